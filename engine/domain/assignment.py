"""The Assignment aggregate: how one ticket is routed to a queue and an agent.

One Assignment per ticket, its id derived from the ticket's. Capacity is checked
against the Agent aggregate's count of active tickets (see ``directory``), and a
lead may override it with a reason.
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from engine.domain.base import (
    CommandMeta,
    DomainEvent,
    EventFactory,
    InvalidTransitionError,
    Kind,
    RuleViolationError,
    derived_id,
    subject_id_field,
)
from engine.domain.directory import Agent

RoutingPolicy = Literal["manual", "round_robin", "least_loaded"]


def assignment_id(ticket_id: UUID) -> UUID:
    return derived_id("assignment", str(ticket_id))


class AssignmentEvent(DomainEvent):
    aggregate_type = "Assignment"
    ticket_id: UUID


class AssignedToQueue(AssignmentEvent):
    type_name = "AssignedToQueue"
    personal_fields = ("reason",)
    subject_field = "subject_id"
    queue: str
    previous_queue: str | None = None
    reason: str | None = None
    subject_id: str | None = subject_id_field()


class AssignedToAgent(AssignmentEvent):
    type_name = "AssignedToAgent"
    personal_fields = ("capacity_override_reason",)
    subject_field = "subject_id"
    agent_id: UUID
    queue: str
    policy: RoutingPolicy = "manual"
    agent_load: int
    agent_capacity: int
    capacity_override_reason: str | None = None
    subject_id: str | None = subject_id_field()


class AssignmentAccepted(AssignmentEvent):
    type_name = "AssignmentAccepted"
    agent_id: UUID


class Reassigned(AssignmentEvent):
    type_name = "Reassigned"
    personal_fields = ("reason", "capacity_override_reason")
    subject_field = "subject_id"
    from_agent_id: UUID
    agent_id: UUID
    queue: str
    reason: str
    agent_load: int
    agent_capacity: int
    capacity_override_reason: str | None = None
    subject_id: str | None = subject_id_field()


class AssignmentReleased(AssignmentEvent):
    type_name = "AssignmentReleased"
    personal_fields = ("reason",)
    subject_field = "subject_id"
    agent_id: UUID
    reason: str | None = None
    subject_id: str | None = subject_id_field()


class Assignment(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: UUID
    ticket_id: UUID
    version: int = 0
    queue: str | None = None
    agent_id: UUID | None = None
    accepted: bool = False


def empty(ticket_id: UUID) -> Assignment:
    return Assignment(id=assignment_id(ticket_id), ticket_id=ticket_id)


def evolve(state: Assignment, event: DomainEvent) -> Assignment:
    s = state.model_copy(update={"version": event.originator_version})
    match event:
        case AssignedToQueue():
            return s.model_copy(update={"queue": event.queue})
        case AssignedToAgent():
            return s.model_copy(
                update={"queue": event.queue, "agent_id": event.agent_id, "accepted": False}
            )
        case AssignmentAccepted():
            return s.model_copy(update={"accepted": True})
        case Reassigned():
            return s.model_copy(
                update={"queue": event.queue, "agent_id": event.agent_id, "accepted": False}
            )
        case AssignmentReleased():
            return s.model_copy(update={"agent_id": None, "accepted": False})
    return s


def _check_agent(agent: Agent, queue: str, override_reason: str | None) -> None:
    if not agent.active:
        raise RuleViolationError(f"agent {agent.name} is deactivated")
    if queue not in agent.queues:
        raise RuleViolationError(
            f"agent {agent.name} is not a member of queue {queue!r} "
            f"(member of: {', '.join(sorted(agent.queues)) or 'none'})"
        )
    if agent.load >= agent.capacity and not override_reason:
        raise RuleViolationError(
            f"agent {agent.name} is at capacity ({agent.load} of {agent.capacity} active "
            "tickets): a lead may override with a reason"
        )


def assign_queue(
    a: Assignment, meta: CommandMeta, queue: str, reason: str | None, subject: str | None = None
) -> list[DomainEvent]:
    """Route the ticket to ``queue``; ``subject`` is its requester (seals the reason)."""
    if a.queue == queue:
        return []
    return [
        EventFactory(meta).make(
            AssignedToQueue,
            a.id,
            a.version + 1,
            ticket_id=a.ticket_id,
            queue=queue,
            previous_queue=a.queue,
            reason=reason,
            subject_id=subject,
        )
    ]


def assign_agent(
    a: Assignment,
    meta: CommandMeta,
    agent: Agent,
    queue: str,
    reason: str | None,
    override_reason: str | None,
    policy: RoutingPolicy = "manual",
    version_offset: int = 0,
    subject: str | None = None,
) -> list[DomainEvent]:
    """Assign, or reassign (which needs a reason), the ticket to an agent of ``queue``;
    ``subject`` is the ticket's requester (seals the reasons)."""
    if a.agent_id == agent.id:
        raise RuleViolationError(f"the ticket is already assigned to {agent.name}")
    _check_agent(agent, queue, override_reason)
    override = override_reason if agent.load >= agent.capacity else None
    make = EventFactory(meta)
    version = a.version + 1 + version_offset
    if a.agent_id is None:
        return [
            make.make(
                AssignedToAgent,
                a.id,
                version,
                ticket_id=a.ticket_id,
                agent_id=agent.id,
                queue=queue,
                policy=policy,
                agent_load=agent.load,
                agent_capacity=agent.capacity,
                capacity_override_reason=override,
                subject_id=subject,
            )
        ]
    if not reason:
        raise RuleViolationError("reassigning a ticket needs a reason")
    return [
        make.make(
            Reassigned,
            a.id,
            version,
            ticket_id=a.ticket_id,
            from_agent_id=a.agent_id,
            agent_id=agent.id,
            queue=queue,
            reason=reason,
            agent_load=agent.load,
            agent_capacity=agent.capacity,
            capacity_override_reason=override,
            subject_id=subject,
        )
    ]


def accept(a: Assignment, meta: CommandMeta, agent_id: UUID) -> list[DomainEvent]:
    if a.agent_id is None:
        raise InvalidTransitionError("assignment", "unassigned", "accept", ["assign"])
    if a.agent_id != agent_id:
        raise RuleViolationError("only the assigned agent can accept the ticket")
    if a.accepted:
        raise InvalidTransitionError("assignment", "accepted", "accept", ["release", "assign"])
    return [
        EventFactory(meta).make(
            AssignmentAccepted, a.id, a.version + 1, ticket_id=a.ticket_id, agent_id=agent_id
        )
    ]


def release(
    a: Assignment, meta: CommandMeta, reason: str | None, subject: str | None = None
) -> list[DomainEvent]:
    if a.agent_id is None:
        raise InvalidTransitionError("assignment", "unassigned", "release", ["assign"])
    return [
        EventFactory(meta).make(
            AssignmentReleased,
            a.id,
            a.version + 1,
            ticket_id=a.ticket_id,
            agent_id=a.agent_id,
            reason=reason,
            subject_id=subject,
        )
    ]


KIND = Kind("Assignment", evolve, empty)
"""An assignment is keyed by its ticket's id; before any event the ticket is unassigned."""
