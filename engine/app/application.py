"""The application: thin use cases that load, decide, save and return.

Every command is one atomic append (``Application.save`` -> one ``insert_events``),
across however many aggregates it touches. Store conflicts become ``ConflictError``.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar, cast
from uuid import UUID, uuid4

from eventsourcing.application import Application
from eventsourcing.persistence import EventStore, IntegrityError, Mapper, Recording

from engine.app.permissions import Principal, authorize
from engine.app.results import CommandResult, EscalationDetails, TicketDetails
from engine.app.streams import StreamCache
from engine.domain import assignment as asg
from engine.domain import directory as dirs
from engine.domain import escalation as esc
from engine.domain import ticket as tk
from engine.domain.base import (
    CommandMeta,
    DomainError,
    DomainEvent,
    EventFactory,
    NotFoundError,
    RuleViolationError,
)
from engine.domain.idempotency import CommandProcessed, command_processed, idempotency_id
from engine.domain.priority import Level, Priority, PriorityMatrix
from engine.integrity.keystore import KeyStore, MemoryKeyStore
from engine.integrity.recording import ChainedEventStore
from engine.stores.envelope import EnvelopeMapper

S = TypeVar("S")


class ConflictError(DomainError):
    """Another command changed the same aggregate first; retry with fresh state."""


class PreconditionFailedError(DomainError):
    """The client's If-Match does not match the resource's current ETag."""


class IdempotencyKeyReusedError(DomainError):
    """The Idempotency-Key was used before for a different request."""


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def new_api_key() -> str:
    return "tk_" + secrets.token_urlsafe(32)


class Idempotency:
    """The identity of one command as the client sent it."""

    def __init__(self, key: str, method: str, path: str, body: bytes) -> None:
        self.key, self.method, self.path = key, method, path
        self.request_hash = hashlib.sha256(
            method.encode() + b" " + path.encode() + b"\n" + body
        ).hexdigest()


class TicketingApp(Application[UUID]):
    """Service-desk use cases on an eventsourcing Application."""

    name = "ticketing"

    def __init__(
        self,
        env: dict[str, str] | None = None,
        matrix: PriorityMatrix | None = None,
        reopen_window: timedelta = timedelta(days=7),
        keys: KeyStore | None = None,
    ) -> None:
        # Personal data is sealed with per-subject keys (crypto-shredding).
        self.keys: KeyStore = keys if keys is not None else MemoryKeyStore()
        # Called after every successful append (the views wake up instead of polling).
        self.listeners: list[Callable[[], None]] = []
        self._queues: dict[str, dirs.Queue] = {}
        # Folded states and chain heads of streams used lately (see engine.app.streams).
        self.streams = StreamCache()
        super().__init__(env)
        self.matrix = matrix or PriorityMatrix()
        self.reopen_window = reopen_window

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """As ``Application.save``; our own events (the usual case) skip the library's
        per-object protocol checks, which cost more than the rest of collecting them."""
        if (
            kwargs
            or self.snapshots is not None
            or not all(isinstance(o, DomainEvent) for o in objs)
        ):
            return super().save(*objs, **kwargs)
        recordings = self.events.put(objs, tracking=None)
        self._notify(recordings)
        return recordings

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        for listener in self.listeners:
            listener()

    def construct_mapper(self) -> Mapper[UUID]:
        return EnvelopeMapper(self.keys)

    def construct_event_store(self) -> EventStore[UUID]:
        mapper = self.mapper
        assert isinstance(mapper, EnvelopeMapper)
        return ChainedEventStore(mapper, self.recorder, self.streams)

    # --- loading ---------------------------------------------------------------

    def _events(self, aggregate_id: UUID, version: int | None = None) -> list[DomainEvent]:
        return list(self.events.get(aggregate_id, lte=version))  # type: ignore[arg-type]

    def _fold(
        self,
        aggregate_id: UUID,
        evolve: Callable[[Any, DomainEvent], S],
        initial: S | None = None,
        version: int | None = None,
    ) -> S | None:
        state = initial
        for event in self._events(aggregate_id, version):
            if event.originator_version == 1:
                _require_kind(aggregate_id, evolve, event)
            state = evolve(state, event)
        return state

    def _current(
        self,
        aggregate_id: UUID,
        evolve: Callable[[Any, DomainEvent], S],
        initial: S | None = None,
    ) -> S | None:
        """The stream's current state, like ``_fold``: the remembered fold of its first
        events, then the events recorded after those, read from the store now. Only for
        states used to decide, never shown: what is remembered holds no personal data
        (``_forgettable``), so an erasure, in this process or another, leaves no
        plaintext behind in memory."""
        known = self.streams.state(aggregate_id, evolve)
        version, state = known if known is not None else (0, initial)
        stored = self.recorder.select_events(aggregate_id, gt=version or None)
        if not stored:
            return state
        mapper = cast(EnvelopeMapper, self.mapper)
        head: str | None = None
        for record in stored:
            event, head = mapper.decoded(record)
            if event.originator_version == 1:
                _require_kind(aggregate_id, evolve, event)
            state = evolve(state, event)
        version = stored[-1].originator_version
        self.streams.remember_state(aggregate_id, evolve, version, _forgettable(state))
        if head is not None:
            self.streams.remember_head(aggregate_id, version, head)
        return state

    def ticket(
        self, ticket_id: UUID, version: int | None = None, *, deciding: bool = False
    ) -> tk.Ticket:
        """The ticket (at ``version``). ``deciding``: for a command's decision only, which
        may use a remembered fold (see ``_current``); what is shown is always read whole."""
        if deciding and version is None:
            t = self._current(ticket_id, tk.evolve)
        else:
            t = self._fold(ticket_id, tk.evolve, version=version)
        if t is None:
            raise NotFoundError(f"ticket {ticket_id} not found")
        return t

    def assignment(self, ticket_id: UUID) -> asg.Assignment:
        state = self._current(asg.assignment_id(ticket_id), asg.evolve, asg.empty(ticket_id))
        assert state is not None
        return state

    def agent(self, agent_id: UUID) -> dirs.Agent:
        a = self._current(agent_id, dirs.evolve_agent)
        if a is None:
            raise NotFoundError(f"agent {agent_id} not found")
        return a

    def queue(self, name: str) -> dirs.Queue:
        # Queues are never removed, so one found stays valid: remember it.
        q = self._queues.get(name) or self._fold(dirs.queue_id(name), dirs.evolve_queue)
        if q is None:
            raise NotFoundError(f"queue {name!r} not found")
        self._queues[name] = q
        return q

    def escalation(self, escalation_id: UUID) -> esc.Escalation:
        e = self._current(escalation_id, esc.evolve)
        if e is None:
            raise NotFoundError(f"escalation {escalation_id} not found")
        return e

    def credential(self, api_key: str) -> dirs.Credential | None:
        return self._fold(dirs.credential_id(hash_key(api_key)), dirs.evolve_credential)

    def credential_by_id(self, credential_id: UUID) -> dirs.Credential | None:
        return self._fold(credential_id, dirs.evolve_credential)

    def agent_ids(self) -> list[UUID]:
        """Every registered agent, in registration order (read from the log)."""
        ids: list[UUID] = []
        start = 1
        while True:
            batch = self.recorder.select_notifications(start, 1000, topics=["AgentRegistered"])
            ids += [UUID(str(n.originator_id)) for n in batch]
            if len(batch) < 1000:
                return ids
            start = batch[-1].id + 1

    # --- saving ----------------------------------------------------------------

    def _previous_result(self, principal: Principal, idem: Idempotency) -> CommandResult | None:
        events = self._events(idempotency_id(principal.id, idem.key))
        if not events:
            return None
        record = events[0]
        assert isinstance(record, CommandProcessed)
        if record.request_hash != idem.request_hash:
            raise IdempotencyKeyReusedError(
                f"Idempotency-Key {idem.key!r} was used for a different request "
                f"({record.method} {record.path}); use a new key"
            )
        position = self.recorder.max_notification_id() or 0
        return CommandResult.model_validate(
            {**record.response, "position": position, "replayed": True}
        )

    def _commit(
        self,
        principal: Principal,
        meta: CommandMeta,
        events: Sequence[DomainEvent],
        result: Callable[[int], CommandResult],
        idem: Idempotency | None,
    ) -> CommandResult:
        """Append the events (and the idempotency record) in one atomic append."""
        pending = list(events)
        if not pending:
            raise RuleViolationError("the command changes nothing")
        provisional = result(0)
        if idem is not None:
            stored = provisional.model_dump(mode="json", exclude={"position", "replayed"})
            stored["extra"] = {k: v for k, v in stored["extra"].items() if k != "api_key"}
            pending += command_processed(
                EventFactory(meta),
                principal.id,
                idem.key,
                idem.method,
                idem.path,
                idem.request_hash,
                provisional.status_code,
                stored,
            )
        try:
            recordings = self.save(*pending)
        except IntegrityError:
            if idem is not None:
                previous = self._previous_result(principal, idem)
                if previous is not None:
                    return previous
            raise ConflictError(
                "another change to the same ticket or agent was recorded first; reload and retry"
            ) from None
        position = max(r.notification.id for r in recordings) if recordings else 0
        return result(position)

    def run(
        self,
        principal: Principal,
        meta: CommandMeta,
        idem: Idempotency | None,
        decide: Callable[[], tuple[list[DomainEvent], Callable[[int], CommandResult]]],
    ) -> CommandResult:
        """Answer a retry from its first result, or decide and commit once."""
        if idem is not None:
            previous = self._previous_result(principal, idem)
            if previous is not None:
                return previous
        events, result = decide()
        return self._commit(principal, meta, events, result, idem)


def etag(ticket_version: int, assignment_version: int) -> str:
    """The ticket resource's version: the ticket's and its assignment's versions."""
    return f'"{ticket_version}.{assignment_version}"'


def new_meta(
    principal: Principal,
    occurred_at: Any,
    correlation_id: UUID | None = None,
    causation_id: UUID | None = None,
) -> CommandMeta:
    return CommandMeta(
        actor=principal.id,
        occurred_at=occurred_at,
        correlation_id=correlation_id or uuid4(),
        causation_id=causation_id,
    )


__all__ = [
    "CommandResult",
    "ConflictError",
    "EscalationDetails",
    "Idempotency",
    "IdempotencyKeyReusedError",
    "Level",
    "PreconditionFailedError",
    "Priority",
    "TicketDetails",
    "TicketingApp",
    "authorize",
    "etag",
    "new_api_key",
    "new_meta",
]


def _require_kind(aggregate_id: UUID, evolve: Callable[..., Any], first: DomainEvent) -> None:
    """An id of another kind of aggregate (a ticket's id asked for as an escalation, say)
    is not found, rather than folded by the wrong ``evolve``."""
    expected = _KINDS.get(evolve)
    if expected is not None and first.aggregate_type != expected:
        raise NotFoundError(f"{expected.lower()} {aggregate_id} not found")


_KINDS: dict[Callable[..., Any], str] = {
    tk.evolve: "Ticket",
    asg.evolve: "Assignment",
    esc.evolve: "Escalation",
    dirs.evolve_agent: "Agent",
    dirs.evolve_queue: "Queue",
    dirs.evolve_credential: "Credential",
}


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
}
