"""Loading aggregates: every read of a stream goes through here.

- ``events`` and ``fold`` read a stream whole (up to a version or a moment): what is
  shown to people, and configuration as it stood when something happened.
- ``current`` is for deciding: the remembered fold of a stream's first events, then the
  events recorded after them, read from the store now (see ``engine.app.streams``).
  Remembered states hold no personal data, so an erasure leaves no plaintext behind.

Every stream is folded from its kind's initial state (``engine.domain.base.Kind``). An id
that belongs to another kind of aggregate (a ticket's id asked for as an escalation, say)
is not found, rather than folded by the wrong ``evolve``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, TypeVar, cast
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, EventStore, Mapper

from engine.app.streams import StreamCache
from engine.domain import assignment as asg
from engine.domain import availability as av
from engine.domain import directory as dirs
from engine.domain import escalation as esc
from engine.domain import privacy
from engine.domain import ticket as tk
from engine.domain.base import DomainEvent, Kind, NotFoundError
from engine.domain.commands.directory import hash_key
from engine.domain.commands.tickets import DeskRules
from engine.integrity.keystore import KeyStore
from engine.stores.envelope import EnvelopeMapper


class Store(Protocol):
    """What the repository reads through (the application, engine.app.application)."""

    events: EventStore[UUID]
    recorder: ApplicationRecorder
    mapper: Mapper[UUID]
    streams: StreamCache
    keys: KeyStore
    rules: DeskRules


S = TypeVar("S")


class Repository:
    """The streams of one application's store, folded into domain states."""

    def __init__(self, app: Store) -> None:
        self.app = app
        self._queues: dict[str, dirs.Queue] = {}

    # --- any stream ---------------------------------------------------------------------

    def events(self, aggregate_id: UUID, version: int | None = None) -> list[DomainEvent]:
        """The stream's events (up to ``version``), decoded."""
        return list(self.app.events.get(aggregate_id, lte=version))  # type: ignore[arg-type]

    def last_version(self, aggregate_id: UUID) -> int:
        """The stream's version (0 before its first event)."""
        last = list(self.app.events.get(aggregate_id, desc=True, limit=1))
        return last[0].originator_version if last else 0

    def fold(
        self,
        aggregate_id: UUID,
        kind: Kind[S],
        key: Any = None,
        *,
        version: int | None = None,
        until: datetime | None = None,
    ) -> S | None:
        """The stream folded from its kind's initial state (for ``key``), up to
        ``version`` and over the events that occurred by ``until``."""
        state = kind.initial(key)
        for event in self.events(aggregate_id, version):
            if until is not None and event.occurred_at > until:
                break
            if event.originator_version == 1:
                _require_kind(aggregate_id, kind, event)
            state = kind.evolve(state, event)
        return state

    def current(self, aggregate_id: UUID, kind: Kind[S], key: Any = None) -> S | None:
        """The stream's current state, as ``fold`` gives it, from the remembered fold of its
        first events and the events recorded after those. Only for deciding."""
        app = self.app
        known = app.streams.state(aggregate_id, kind)
        version, state = known if known is not None else (0, kind.initial(key))
        stored = app.recorder.select_events(aggregate_id, gt=version or None)
        if not stored:
            return state
        mapper = cast(EnvelopeMapper, app.mapper)
        head: str | None = None
        for record in stored:
            event, head = mapper.decoded(record)
            if event.originator_version == 1:
                _require_kind(aggregate_id, kind, event)
            state = kind.evolve(state, event)
        version = stored[-1].originator_version
        app.streams.remember_state(aggregate_id, kind, version, _forgettable(state))
        if head is not None:
            app.streams.remember_head(aggregate_id, version, head)
        return state

    # --- the desk's aggregates ------------------------------------------------------------

    def ticket(
        self, ticket_id: UUID, version: int | None = None, *, deciding: bool = False
    ) -> tk.Ticket:
        """The ticket (at ``version``). ``deciding``: for a command's decision only, which
        may use a remembered fold; what is shown is always read whole."""
        if deciding and version is None:
            t = self.current(ticket_id, tk.KIND)
        else:
            t = self.fold(ticket_id, tk.KIND, version=version)
        if t is None:
            raise NotFoundError(f"ticket {ticket_id} not found")
        return t

    def assignment(self, ticket_id: UUID) -> asg.Assignment:
        state = self.current(asg.assignment_id(ticket_id), asg.KIND, ticket_id)
        assert state is not None  # folded from an initial state
        return state

    def agent(self, agent_id: UUID) -> dirs.Agent:
        a = self.current(agent_id, dirs.AGENT_KIND)
        if a is None:
            raise NotFoundError(f"agent {agent_id} not found")
        return a

    def agent_with_availability(self, agent_id: UUID) -> tuple[dirs.Agent, av.Availability]:
        """The agent and their availability, folded from one read of the stream."""
        agent: dirs.Agent | None = None
        availability: av.Availability | None = None
        for event in self.events(agent_id):
            if event.originator_version == 1:
                _require_kind(agent_id, dirs.AGENT_KIND, event)
            agent = dirs.evolve_agent(agent, event)
            availability = av.evolve(availability, event)
        if agent is None or availability is None:
            raise NotFoundError(f"agent {agent_id} not found")
        return agent, availability

    def agent_ids(self) -> list[UUID]:
        """Every registered agent, in registration order (read from the log)."""
        ids: list[UUID] = []
        start = 1
        while True:
            batch = self.app.recorder.select_notifications(start, 1000, topics=["AgentRegistered"])
            ids += [UUID(str(n.originator_id)) for n in batch]
            if len(batch) < 1000:
                return ids
            start = batch[-1].id + 1

    def queue(self, name: str) -> dirs.Queue:
        """The queue, or NotFoundError. Queues are never removed: one found is remembered."""
        q = self._queues.get(name) or self.find_queue(name)
        if q is None:
            raise NotFoundError(f"queue {name!r} not found")
        self._queues[name] = q
        return q

    def find_queue(self, name: str) -> dirs.Queue | None:
        return self.fold(dirs.queue_id(name), dirs.QUEUE_KIND)

    def escalation(self, escalation_id: UUID) -> esc.Escalation:
        e = self.current(escalation_id, esc.KIND)
        if e is None:
            raise NotFoundError(f"escalation {escalation_id} not found")
        return e

    def credential(self, api_key: str) -> dirs.Credential | None:
        return self.credential_by_id(dirs.credential_id(hash_key(api_key)))

    def credential_by_id(self, credential_id: UUID) -> dirs.Credential | None:
        return self.fold(credential_id, dirs.CREDENTIAL_KIND)

    def subject(self, subject_id: str) -> privacy.DataSubject:
        state = self.fold(privacy.subject_aggregate_id(subject_id), privacy.KIND, subject_id)
        assert state is not None  # folded from an initial state
        return state


def _require_kind(aggregate_id: UUID, kind: Kind[Any], first: DomainEvent) -> None:
    if first.aggregate_type != kind.aggregate_type:
        raise NotFoundError(f"{kind.aggregate_type.lower()} {aggregate_id} not found")


def _forgettable(state: S) -> S:
    """``state`` without the personal fields a Ticket folds from its events (no
    decision reads them): the form a state may be remembered in."""
    if isinstance(state, tk.Ticket):
        return cast(S, state.model_copy(update=_NO_PERSONAL_DATA))
    return state


_NO_PERSONAL_DATA: dict[str, Any] = {
    "title": "",
    "description": "",
    "requester_name": None,
    "requester_email": None,
    "csat_comment": None,
    "priority_override_reason": None,
    "resolution_note": None,
    "pending_reason": None,
    "cancel_reason": None,
}
