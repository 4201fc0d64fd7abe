"""The Agent aggregate: who works which queues, and the tickets they hold.

An Agent counts its active tickets, so capacity is enforced consistently: taking a ticket
appends to the agent's stream in the same atomic append as the assignment, and a
concurrent assignment conflicts.
"""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict

from engine.domain.base import (
    CommandMeta,
    DomainEvent,
    EventFactory,
    Kind,
    RuleViolationError,
    subject_id_field,
)
from engine.domain.directory.roles import Role


def agent_principal(agent_id: UUID) -> str:
    """The principal id of an agent's API key, and the data subject of their personal
    data (name, email, the reasons about them): opaque, made from the agent's random id."""
    return f"agent:{agent_id}"


def agent_of(principal_id: str) -> UUID | None:
    """The agent whose principal (and data subject) ``principal_id`` is, if an agent's."""
    prefix, _, rest = principal_id.partition(":")
    if prefix != "agent" or not rest:
        return None
    try:
        return UUID(rest)
    except ValueError:
        return None


AGENT_SUBJECT = "the agent"


class AgentEvent(DomainEvent):
    aggregate_type = "Agent"


class AgentRegistered(AgentEvent):
    type_name = "AgentRegistered"
    personal_fields = ("name", "email")
    subject_field = "subject_id"
    name: str
    email: str | None = None
    role: Role
    queues: list[str]
    capacity: int
    subject_id: str | None = subject_id_field(AGENT_SUBJECT)


class AgentUpdated(AgentEvent):
    type_name = "AgentUpdated"
    personal_fields = ("reason",)
    subject_field = "subject_id"
    queues: list[str]
    capacity: int
    active: bool
    reason: str | None = None
    subject_id: str | None = subject_id_field(AGENT_SUBJECT)


class AgentTookTicket(AgentEvent):
    type_name = "AgentTookTicket"
    ticket_id: UUID


class AgentDroppedTicket(AgentEvent):
    type_name = "AgentDroppedTicket"
    ticket_id: UUID
    why: str


class Agent(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: UUID
    version: int
    name: str
    email: str | None
    role: Role
    queues: frozenset[str]
    capacity: int
    active: bool = True
    tickets: frozenset[UUID] = frozenset()

    @property
    def load(self) -> int:
        return len(self.tickets)


def evolve_agent(state: Agent | None, event: DomainEvent) -> Agent:
    if isinstance(event, AgentRegistered):
        return Agent(
            id=event.originator_id,
            version=event.originator_version,
            name=event.name,
            email=event.email,
            role=event.role,
            queues=frozenset(event.queues),
            capacity=event.capacity,
        )
    assert state is not None
    s = state.model_copy(update={"version": event.originator_version})
    match event:
        case AgentUpdated():
            return s.model_copy(
                update={
                    "queues": frozenset(event.queues),
                    "capacity": event.capacity,
                    "active": event.active,
                }
            )
        case AgentTookTicket():
            return s.model_copy(update={"tickets": s.tickets | {event.ticket_id}})
        case AgentDroppedTicket():
            return s.model_copy(update={"tickets": s.tickets - {event.ticket_id}})
    return s


def _require_capacity(capacity: int) -> None:
    if capacity < 1:
        raise RuleViolationError("an agent's capacity is at least 1 active ticket")


def register_agent(
    meta: CommandMeta,
    agent_id: UUID,
    name: str,
    email: str | None,
    role: Role,
    queues: list[str],
    capacity: int,
) -> list[DomainEvent]:
    if role not in (Role.AGENT, Role.LEAD):
        raise RuleViolationError(f"an agent's role is agent or lead, not {role}")
    _require_capacity(capacity)
    return [
        EventFactory(meta).make(
            AgentRegistered,
            agent_id,
            1,
            name=name,
            email=email,
            role=role,
            queues=sorted(set(queues)),
            capacity=capacity,
            subject_id=agent_principal(agent_id),
        )
    ]


def update_agent(
    agent: Agent,
    meta: CommandMeta,
    queues: list[str] | None,
    capacity: int | None,
    active: bool | None,
    reason: str | None,
) -> list[DomainEvent]:
    new_capacity = capacity if capacity is not None else agent.capacity
    _require_capacity(new_capacity)
    return [
        EventFactory(meta).make(
            AgentUpdated,
            agent.id,
            agent.version + 1,
            queues=sorted(set(queues)) if queues is not None else sorted(agent.queues),
            capacity=new_capacity,
            active=active if active is not None else agent.active,
            reason=reason,
            subject_id=agent_principal(agent.id),
        )
    ]


def take_ticket(agent: Agent, make: EventFactory, ticket_id: UUID) -> list[DomainEvent]:
    if ticket_id in agent.tickets:
        return []
    return [make.make(AgentTookTicket, agent.id, agent.version + 1, ticket_id=ticket_id)]


def drop_ticket(agent: Agent, make: EventFactory, ticket_id: UUID, why: str) -> list[DomainEvent]:
    if ticket_id not in agent.tickets:
        return []
    return [
        make.make(AgentDroppedTicket, agent.id, agent.version + 1, ticket_id=ticket_id, why=why)
    ]


KIND = Kind("Agent", evolve_agent)
