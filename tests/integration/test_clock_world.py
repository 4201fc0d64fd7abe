"""Helpers for the clock tests (no tests here): a service desk on a real SQLite event store,
with a time source the tests drive."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast
from uuid import UUID, uuid4

from eventsourcing.persistence import TrackingRecorder

from engine.app.application import TicketingApp
from engine.app.config import SlaConfig
from engine.app.desk import Desk
from engine.app.permissions import Principal
from engine.domain import sla
from engine.domain.base import DomainEvent
from engine.domain.commands.directory import CreateQueue, RegisterAgent
from engine.domain.commands.tickets import OpenTicket
from engine.domain.directory import Role
from engine.domain.priority import Level
from engine.domain.ticket import Channel
from engine.integrity.keystore import MemoryKeyStore
from engine.processes.sla_clock import SlaClockProcess, open_tracking

MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # no holidays nearby
ADMIN = Principal(id="admin", name="admin", role=Role.ADMIN)
QUEUE = "network"
LEVELS = {  # impact, urgency giving each priority in the default matrix
    "P1": (Level.HIGH, Level.HIGH),
    "P2": (Level.HIGH, Level.MEDIUM),
    "P3": (Level.MEDIUM, Level.MEDIUM),
    "P4": (Level.LOW, Level.LOW),
}


class FakeTime:
    """A time source the test moves by hand."""

    def __init__(self, start: datetime) -> None:
        self.at = start

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> datetime:
        self.at += timedelta(**delta)
        return self.at


def forbidden_clock() -> datetime:
    raise AssertionError("the wall clock was read")


class World:
    """One engine process's worth of objects on the data directory ``path`` (SQLite), or
    in memory where only speed matters."""

    def __init__(
        self,
        path: Path,
        time: FakeTime,
        keys: MemoryKeyStore | None = None,
        in_memory: bool = False,
    ) -> None:
        self.path, self.time = path, time
        self.keys = keys or MemoryKeyStore()
        env = (
            {"PERSISTENCE_MODULE": "eventsourcing.popo"}
            if in_memory
            else {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(path / "events.sqlite"),
                "SQLITE_LOCK_TIMEOUT": "10",
            }
        )
        self.app = TicketingApp(env=env, keys=self.keys)
        self.desk = Desk(self.app, time)
        self.config = SlaConfig(self.app.aggregates)
        self.agents: dict[str, UUID] = {}

    def twin(self) -> World:
        """A second engine process on the same store (and key store)."""
        return World(self.path, self.time, self.keys)

    def clock(
        self, tracking: TrackingRecorder | None = None, now: Callable[[], datetime] | None = None
    ) -> SlaClockProcess:
        return SlaClockProcess(self.app, now or self.time, tracking)

    def tracking(self) -> TrackingRecorder:
        return open_tracking(self.path)

    def staff(self, queue: str = QUEUE, agents: int = 2, capacity: int = 50) -> None:
        self.desk.send(ADMIN, CreateQueue(name=queue))
        self.hire("Lena", Role.LEAD, queue, capacity)
        for i in range(agents):
            self.hire(f"Agent{i}", Role.AGENT, queue, capacity)

    def hire(self, name: str, role: Role, queue: str, capacity: int) -> UUID:
        agent_id = uuid4()
        self.desk.send(
            ADMIN,
            RegisterAgent(
                agent_id=agent_id, name=name, role=role, queues=[queue], capacity=capacity
            ),
        )
        self.agents[name] = agent_id
        return agent_id

    def agent(self, name: str) -> Principal:
        return Principal(
            id=f"agent:{self.agents[name]}", name=name, role=Role.LEAD, agent_id=self.agents[name]
        )

    def open(self, priority: str = "P2", queue: str | None = QUEUE) -> UUID:
        impact, urgency = LEVELS[priority]
        ticket_id = uuid4()
        cmd = OpenTicket(
            ticket_id=ticket_id,
            title="VPN drops",
            description="every hour",
            requester_id="0a0a0a0a-0000-4000-8000-00000000a117",
            channel=Channel.EMAIL,
            category="network",
            impact=impact,
            urgency=urgency,
            queue=queue,
        )
        self.desk.send(ADMIN, cmd)
        return ticket_id

    def events(self, aggregate_id: UUID) -> list[DomainEvent]:
        return self.app.aggregates.events(aggregate_id)

    def clock_events(self, ticket_id: UUID) -> list[str]:
        return [e.type_name for e in self.events(sla.clock_id(ticket_id))]

    def log(self, *types: str) -> Iterator[DomainEvent]:
        """Every recorded event of the given types, in log order."""
        for n in self.app.recorder.select_notifications(1, 1_000_000, topics=list(types)):
            yield cast(DomainEvent, self.app.mapper.to_domain_event(n))
