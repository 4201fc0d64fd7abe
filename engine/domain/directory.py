"""Configuration that is itself audited: queues (teams), agents and API credentials.

Queues and credentials are addressed by natural keys (queue name, key hash), so their
ids are derived and no lookup index is needed. An Agent counts its active tickets, so
capacity is enforced consistently: taking a ticket appends to the agent's stream in
the same atomic append as the assignment, and a concurrent assignment conflicts.
"""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from engine.domain.base import (
    CommandMeta,
    DomainEvent,
    EventFactory,
    NotFoundError,
    RuleViolationError,
    derived_id,
)


class Role(StrEnum):
    REQUESTER = "requester"
    AGENT = "agent"
    LEAD = "lead"
    AUDITOR = "auditor"
    ADMIN = "admin"


def queue_id(name: str) -> UUID:
    return derived_id("queue", name)


def credential_id(key_hash: str) -> UUID:
    return derived_id("credential", key_hash)


BOOTSTRAP_ID = derived_id("system", "bootstrap")


# --- queues ---------------------------------------------------------------------


class QueueCreated(DomainEvent):
    type_name = "QueueCreated"
    aggregate_type = "Queue"
    name: str
    description: str | None = None


class Queue(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: UUID
    version: int
    name: str
    description: str | None


def evolve_queue(state: Queue | None, event: DomainEvent) -> Queue:
    if isinstance(event, QueueCreated):
        return Queue(
            id=event.originator_id,
            version=event.originator_version,
            name=event.name,
            description=event.description,
        )
    assert state is not None
    return state.model_copy(update={"version": event.originator_version})


def create_queue(meta: CommandMeta, name: str, description: str | None) -> list[DomainEvent]:
    return [
        EventFactory(meta).make(QueueCreated, queue_id(name), 1, name=name, description=description)
    ]


# --- agents ---------------------------------------------------------------------


class AgentEvent(DomainEvent):
    aggregate_type = "Agent"


class AgentRegistered(AgentEvent):
    type_name = "AgentRegistered"
    name: str
    email: str | None = None
    role: Role
    queues: list[str]
    capacity: int


class AgentUpdated(AgentEvent):
    type_name = "AgentUpdated"
    queues: list[str]
    capacity: int
    active: bool
    reason: str | None = None


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
    if capacity < 1:
        raise RuleViolationError("an agent's capacity is at least 1 active ticket")
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
    if new_capacity < 1:
        raise RuleViolationError("an agent's capacity is at least 1 active ticket")
    return [
        EventFactory(meta).make(
            AgentUpdated,
            agent.id,
            agent.version + 1,
            queues=sorted(set(queues)) if queues is not None else sorted(agent.queues),
            capacity=new_capacity,
            active=active if active is not None else agent.active,
            reason=reason,
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


# --- credentials ------------------------------------------------------------------


class CredentialIssued(DomainEvent):
    """An API key was issued. Only its SHA-256 hash is recorded, never the key."""

    type_name = "CredentialIssued"
    aggregate_type = "Credential"
    principal_id: str
    name: str
    role: Role
    agent_id: UUID | None = None


class CredentialRevoked(DomainEvent):
    type_name = "CredentialRevoked"
    aggregate_type = "Credential"
    reason: str


class Credential(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: UUID
    version: int
    principal_id: str
    name: str
    role: Role
    agent_id: UUID | None
    revoked: bool = False


def evolve_credential(state: Credential | None, event: DomainEvent) -> Credential:
    if isinstance(event, CredentialIssued):
        return Credential(
            id=event.originator_id,
            version=event.originator_version,
            principal_id=event.principal_id,
            name=event.name,
            role=event.role,
            agent_id=event.agent_id,
        )
    assert state is not None
    s = state.model_copy(update={"version": event.originator_version})
    if isinstance(event, CredentialRevoked):
        return s.model_copy(update={"revoked": True})
    return s


def issue_credential(
    make: EventFactory,
    key_hash: str,
    principal_id: str,
    name: str,
    role: Role,
    agent_id: UUID | None,
) -> list[DomainEvent]:
    return [
        make.make(
            CredentialIssued,
            credential_id(key_hash),
            1,
            principal_id=principal_id,
            name=name,
            role=role,
            agent_id=agent_id,
        )
    ]


def revoke_credential(
    state: Credential | None, make: EventFactory, reason: str
) -> list[DomainEvent]:
    """Revoke an API key: from then on it authenticates nobody (its history stays)."""
    if state is None:
        raise NotFoundError("API key not found")
    if state.revoked:
        raise RuleViolationError(f"API key {state.id} is already revoked")
    return [make.make(CredentialRevoked, state.id, state.version + 1, reason=reason)]


class SystemBootstrapped(DomainEvent):
    """The first start created the admin credential (recorded once, at a fixed id)."""

    type_name = "SystemBootstrapped"
    aggregate_type = "System"
    admin_principal_id: str
