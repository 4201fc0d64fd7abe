"""Given/when/then for deciders: ``given(history).when(decide).then(events)``.

A decision is any function from the history (the events recorded so far) to the new
events; tests adapt a decider to that shape by folding the history first. ``then``
compares events with ``like(EventType, **fields)`` (only the named fields count) or
with whole events; ``then_raises`` checks the refusal and returns the error.

``desk_world()`` is the same idea one level up: a Desk on the in-memory store with a
pinned clock, two queues, a lead, two agents and two requesters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

import pytest

from engine.app.application import TicketingApp
from engine.app.desk import Desk
from engine.app.permissions import Principal
from engine.domain.base import DomainEvent
from engine.domain.commands.directory import CreateQueue, RegisterAgent
from engine.domain.commands.tickets import OpenTicket
from engine.domain.directory import Role
from engine.domain.priority import Level
from engine.domain.ticket import Channel

Decision = Callable[[Sequence[DomainEvent]], Sequence[DomainEvent]]
ErrorT = TypeVar("ErrorT", bound=BaseException)


class Like:
    """Matches an event of exactly ``event_type`` whose named fields equal ``fields``."""

    def __init__(self, event_type: type[DomainEvent], **fields: Any) -> None:
        unknown = set(fields) - set(event_type.model_fields)
        assert not unknown, f"{event_type.__name__} has no fields {sorted(unknown)}"
        self.event_type, self.fields = event_type, fields

    def mismatch(self, event: DomainEvent) -> str | None:
        if type(event) is not self.event_type:
            return f"expected {self.event_type.__name__}, got {type(event).__name__}"
        wrong = {
            name: (getattr(event, name), want)
            for name, want in self.fields.items()
            if getattr(event, name) != want
        }
        return f"{self.event_type.__name__} fields (got, want): {wrong}" if wrong else None

    def __repr__(self) -> str:
        return f"like({self.event_type.__name__}, {self.fields})"


def like(event_type: type[DomainEvent], **fields: Any) -> Like:
    return Like(event_type, **fields)


class When:
    def __init__(self, history: list[DomainEvent], decide: Decision) -> None:
        self.history, self.decide = history, decide

    def then(self, *expected: Like | DomainEvent) -> list[DomainEvent]:
        """Assert the decision's events, in order; returns them for further checks."""
        events = list(self.decide(list(self.history)))
        assert len(events) == len(expected), (
            f"expected {len(expected)} events {list(expected)}, got "
            f"{[type(e).__name__ for e in events]}"
        )
        for index, (event, want) in enumerate(zip(events, expected, strict=True)):
            problem = (
                want.mismatch(event)
                if isinstance(want, Like)
                else (None if event == want else f"{event!r} != {want!r}")
            )
            assert problem is None, f"event {index}: {problem}"
        return events

    def then_raises(self, error: type[ErrorT], match: str | None = None) -> ErrorT:
        """Assert the decision is refused with ``error`` (so it records nothing)."""
        with pytest.raises(error, match=match) as caught:
            self.decide(list(self.history))
        return caught.value


class Given:
    def __init__(self, history: list[DomainEvent]) -> None:
        self.history = history

    def when(self, decide: Decision) -> When:
        return When(self.history, decide)


def given(*histories: Iterable[DomainEvent]) -> Given:
    """The events recorded so far, from any number of aggregates, in order."""
    return Given([event for history in histories for event in history])


# --- given a desk: the application on the in-memory store, with its people -----------------


class Clock:
    """A pinned clock that moves one minute per reading (or as far as told)."""

    def __init__(self, start: datetime = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class DeskWorld:
    """Queues ``service-desk`` and ``network``; lead Lee (both, capacity 3), agents Ann
    (service-desk, capacity 2) and Bo (both, capacity 1); requesters Rita and Sam."""

    app: TicketingApp
    desk: Desk
    clock: Clock
    admin: Principal
    lead: Principal
    ann: Principal
    bo: Principal
    rita: Principal
    sam: Principal

    def head(self) -> int:
        """The notification log's last position (0 when empty)."""
        return self.app.recorder.max_notification_id() or 0

    def open(
        self,
        requester: Principal | None = None,
        queue: str | None = "service-desk",
        impact: Level = Level.MEDIUM,
        urgency: Level = Level.MEDIUM,
    ) -> UUID:
        by = requester or self.rita
        cmd = OpenTicket(
            title="VPN drops every hour",
            description="Since Monday",
            requester_id=by.id,
            channel=Channel.WEB,
            category="network",
            impact=impact,
            urgency=urgency,
            queue=queue,
        )
        return self.desk.send(by, cmd).aggregate_id

    def status(self, ticket_id: UUID) -> str:
        return self.desk.queries.ticket(self.admin, ticket_id).status


def desk_world(env: dict[str, str] | None = None, **app_options: Any) -> DeskWorld:
    """The desk on ``env``'s store (the in-memory one by default)."""
    app = TicketingApp(env=env or {"PERSISTENCE_MODULE": "engine.stores.popo"}, **app_options)
    clock = Clock()
    desk = Desk(app, clock)
    admin = Principal(id="admin:root", name="root", role=Role.ADMIN)
    for queue in ("service-desk", "network"):
        desk.send(admin, CreateQueue(name=queue))

    def register(name: str, role: Role, queues: list[str], capacity: int) -> Principal:
        agent_id = uuid4()
        desk.send(
            admin,
            RegisterAgent(
                agent_id=agent_id, name=name, role=role.value, queues=queues, capacity=capacity
            ),
        )
        return Principal(id=f"agent:{agent_id}", name=name, role=role, agent_id=agent_id)

    return DeskWorld(
        app=app,
        desk=desk,
        clock=clock,
        admin=admin,
        lead=register("Lee", Role.LEAD, ["service-desk", "network"], 3),
        ann=register("Ann", Role.AGENT, ["service-desk"], 2),
        bo=register("Bo", Role.AGENT, ["service-desk", "network"], 1),
        rita=Principal(id="0a0a0a0a-0000-4000-8000-00000000a117", name="Rita", role=Role.REQUESTER),
        sam=Principal(id="0a0a0a0a-0000-4000-8000-000000005a33", name="Sam", role=Role.REQUESTER),
    )
