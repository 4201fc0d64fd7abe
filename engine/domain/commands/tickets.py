"""Commands on a ticket, and the decisions that answer them.

Each decision is pure: ``decide(command, state, meta) -> events``, where the state holds
every stream the command reads (loaded by the application) and the desk's rules. A
decision may touch several aggregates (the ticket, its assignment, the agents whose load
changes, its open escalations); all its events are appended together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal
from uuid import UUID, uuid4

from pydantic import EmailStr, Field

from engine.domain import assignment as asg
from engine.domain import directory as dirs
from engine.domain import escalation as esc
from engine.domain import ticket as tk
from engine.domain.base import CommandMeta, DomainEvent, EventFactory, RuleViolationError
from engine.domain.commands.base import Command, TicketCommand
from engine.domain.escalation import EscalationKind, TargetType
from engine.domain.priority import Level, Priority, PriorityMatrix
from engine.domain.ticket import Channel, Relation, WaitingOn
from engine.domain.values import Name, PrincipalId, QueueName, Reason, Text, Title

# --- the commands ----------------------------------------------------------------------


class OpenTicket(Command):
    makes = ("ticket_id",)
    ticket_id: UUID = Field(default_factory=uuid4)
    title: Title
    description: Text
    requester_id: PrincipalId | None = Field(
        default=None,
        description="who the ticket is for, by principal id (a UUID, or agent:UUID); "
        "requesters always file for themselves",
    )
    requester_name: Name | None = None
    requester_email: EmailStr | None = None
    channel: Channel = Channel.API
    category: Name
    impact: Level
    urgency: Level
    queue: QueueName | None = None


class Triage(TicketCommand):
    impact: Level
    urgency: Level
    priority: Priority | None = Field(
        default=None, description="override of the matrix's priority (leads; needs a reason)"
    )
    reason: Reason | None = None


class Comment(TicketCommand):
    makes = ("comment_id",)
    comment_id: UUID = Field(default_factory=uuid4)
    body: Text
    internal: bool = False


class Assign(TicketCommand):
    queue: QueueName | None = None
    agent_id: UUID | None = None
    reason: Reason | None = None
    override_capacity_reason: Reason | None = None


class Accept(TicketCommand):
    pass


class Release(TicketCommand):
    reason: Reason | None = None


class Start(TicketCommand):
    pass


class Pend(TicketCommand):
    reason: Reason
    waiting_on: WaitingOn = "customer"


class Resume(TicketCommand):
    note: Reason | None = None


class Resolve(TicketCommand):
    resolution_code: Name
    note: Text


class Reopen(TicketCommand):
    reason: Reason


class Close(TicketCommand):
    reason: Reason | None = None


class Cancel(TicketCommand):
    reason: Reason


class Link(TicketCommand):
    other_ticket_id: UUID
    relation: Literal["parent", "child", "related", "duplicate_of"]


class Merge(TicketCommand):
    into_ticket_id: UUID
    reason: Reason | None = None


class Rate(TicketCommand):
    score: int = Field(ge=1, le=5)
    comment: Reason | None = None


class Escalate(TicketCommand):
    makes = ("escalation_id",)
    escalation_id: UUID = Field(default_factory=uuid4)
    kind: EscalationKind
    target_type: TargetType
    target: Name
    reason: Reason
    level: int | None = Field(default=None, ge=1, le=10)


# --- what they decide on -----------------------------------------------------------------


@dataclass(frozen=True)
class DeskRules:
    """The desk's configured rules a decision applies."""

    matrix: PriorityMatrix = field(default_factory=PriorityMatrix)
    reopen_window: timedelta = timedelta(days=7)


@dataclass(frozen=True)
class TicketState:
    """A ticket command's streams: the ticket, its assignment, and as the command
    needs them the agents whose load changes, its open escalations, the other ticket."""

    ticket: tk.Ticket
    assignment: asg.Assignment
    rules: DeskRules
    agents: Mapping[UUID, dirs.Agent] = field(default_factory=dict)
    escalations: Mapping[UUID, esc.Escalation] = field(default_factory=dict)
    other: tk.Ticket | None = None
    find_agent: Callable[[UUID], dirs.Agent] | None = None
    """Any agent's record, read when a permission needs it (the sender's queues)."""

    @property
    def assignee(self) -> UUID | None:
        return self.assignment.agent_id


# --- the decisions ------------------------------------------------------------------------


def open_ticket(c: OpenTicket, rules: DeskRules, meta: CommandMeta) -> list[DomainEvent]:
    """Open and triage at once; a requester always files for themselves, and a ticket
    with a queue is routed to it in the same append."""
    requester = meta.actor if meta.role == "requester" or not c.requester_id else c.requester_id
    opened = tk.OpenTicket.model_validate(
        {**c.model_dump(exclude={"queue"}), "requester_id": requester}
    )
    events = tk.open_ticket(opened, meta, rules.matrix)
    if c.queue is not None:
        events += asg.assign_queue(asg.empty(c.ticket_id), meta, c.queue, "opened", requester)
    return events


def triage(c: Triage, s: TicketState, meta: CommandMeta) -> list[DomainEvent]:
    return tk.triage(
        s.ticket, s.assignee, meta, s.rules.matrix, c.impact, c.urgency, c.priority, c.reason
    )


def comment(c: Comment, s: TicketState, meta: CommandMeta) -> list[DomainEvent]:
    visibility: tk.Visibility = "internal" if c.internal else "public"
    role = meta.role or ""
    return tk.comment(s.ticket, s.assignee, meta, c.comment_id, c.body, visibility, role)


def assign(c: Assign, s: TicketState, meta: CommandMeta) -> list[DomainEvent]:
    """Route the ticket to a queue, to an agent of its queue, or both."""
    if c.queue is None and c.agent_id is None:
        raise RuleViolationError("name a queue, an agent_id, or both")
    t, a = s.ticket, s.assignment
    tk.require(t, a.agent_id, "assign")
    events: list[DomainEvent] = []
    target_queue = c.queue or a.queue
    if c.queue is not None:
        events += asg.assign_queue(a, meta, c.queue, c.reason, t.requester_id)
    if c.agent_id is None:
        if a.agent_id is not None and events:
            old = s.agents[a.agent_id]
            if target_queue not in old.queues:
                raise RuleViolationError(
                    f"the assigned agent {old.name} is not in queue {target_queue!r}: "
                    "release the ticket or name a new agent"
                )
        if not events:
            raise RuleViolationError(f"the ticket is already in queue {c.queue!r}")
        return events
    if target_queue is None:
        raise RuleViolationError("assign the ticket to a queue before an agent")
    agent = s.agents[c.agent_id]
    make = EventFactory(meta)
    events += asg.assign_agent(
        a,
        meta,
        agent,
        target_queue,
        c.reason,
        c.override_capacity_reason,
        version_offset=len(events),
        subject=t.requester_id,
    )
    if a.agent_id is not None:
        events += dirs.drop_ticket(s.agents[a.agent_id], make, t.id, "reassigned")
    if t.is_active:
        events += dirs.take_ticket(agent, make, t.id)
    return events


def accept(c: Accept, s: TicketState, meta: CommandMeta) -> list[DomainEvent]:
    tk.require(s.ticket, s.assignee, "accept", accepted=s.assignment.accepted)
    assert s.assignee is not None  # an unassigned ticket cannot be accepted
    return asg.accept(s.assignment, meta, s.assignee)


def release(c: Release, s: TicketState, meta: CommandMeta) -> list[DomainEvent]:
    tk.require(s.ticket, s.assignee, "release")
    return asg.release(s.assignment, meta, c.reason, s.ticket.requester_id) + _drop(
        s, meta, "released"
    )


def start(c: Start, s: TicketState, meta: CommandMeta) -> list[DomainEvent]:
    return tk.start(s.ticket, s.assignee, meta)


def pend(c: Pend, s: TicketState, meta: CommandMeta) -> list[DomainEvent]:
    return tk.pend(s.ticket, s.assignee, meta, c.reason, c.waiting_on)


def resume(c: Resume, s: TicketState, meta: CommandMeta) -> list[DomainEvent]:
    return tk.resume(s.ticket, s.assignee, meta, c.note)


def resolve(c: Resolve, s: TicketState, meta: CommandMeta) -> list[DomainEvent]:
    events = tk.resolve(s.ticket, s.assignee, meta, c.resolution_code, c.note)
    return events + _drop(s, meta, "resolved")


def reopen(c: Reopen, s: TicketState, meta: CommandMeta) -> list[DomainEvent]:
    events = tk.reopen(s.ticket, s.assignee, meta, c.reason, s.rules.reopen_window)
    if s.assignee is not None:
        # The ticket returns to its agent's load; capacity is not a reason to refuse a
        # customer's reopening.
        events += dirs.take_ticket(s.agents[s.assignee], EventFactory(meta), s.ticket.id)
    return events


def close(c: Close, s: TicketState, meta: CommandMeta) -> list[DomainEvent]:
    events = tk.close(s.ticket, s.assignee, meta, c.reason)
    return events + _withdraw_escalations(s, events, meta, "ticket closed")


def cancel(c: Cancel, s: TicketState, meta: CommandMeta) -> list[DomainEvent]:
    events = tk.cancel(s.ticket, s.assignee, meta, c.reason)
    events += _withdraw_escalations(s, events, meta, "ticket cancelled")
    return events + _drop(s, meta, "cancelled")


def link(c: Link, s: TicketState, meta: CommandMeta) -> list[DomainEvent]:
    assert s.other is not None  # loaded by the application
    return tk.link(s.ticket, s.other, s.assignee, meta, Relation(c.relation))


def merge(c: Merge, s: TicketState, meta: CommandMeta) -> list[DomainEvent]:
    assert s.other is not None  # loaded by the application
    events = tk.merge(s.ticket, s.other, s.assignee, meta, c.reason)
    events += _withdraw_escalations(s, events, meta, f"ticket merged into {c.into_ticket_id}")
    return events + _drop(s, meta, "merged")


def rate(c: Rate, s: TicketState, meta: CommandMeta) -> list[DomainEvent]:
    return tk.rate(s.ticket, s.assignee, meta, c.score, c.comment)


def escalate(c: Escalate, s: TicketState, meta: CommandMeta) -> list[DomainEvent]:
    """Raise an escalation at the chosen level (one above the ticket's by default)."""
    t = s.ticket
    chosen, events = tk.escalated(t, s.assignee, meta, c.escalation_id, c.level)
    events += esc.raise_escalation(
        meta,
        c.escalation_id,
        t.id,
        c.kind,
        c.target_type,
        c.target,
        c.reason,
        chosen,
        "manual",
        t.requester_id,
    )
    return events


def _drop(s: TicketState, meta: CommandMeta, why: str) -> list[DomainEvent]:
    """The assigned agent's load drops by this ticket (when it has an agent)."""
    if s.assignee is None:
        return []
    return dirs.drop_ticket(s.agents[s.assignee], EventFactory(meta), s.ticket.id, why)


def _withdraw_escalations(
    s: TicketState, ending: list[DomainEvent], meta: CommandMeta, why: str
) -> list[DomainEvent]:
    """Withdraw the escalations still open on a ticket that ``ending`` closes, cancels or
    merges, in the same append: no team, vendor or manager is left working on it."""
    state = s.ticket
    for event in ending:
        if event.originator_id == state.id:
            state = tk.evolve(state, event)
    events: list[DomainEvent] = []
    for escalation_id, _level in s.ticket.open_escalations:
        events += esc.withdraw(s.escalations[escalation_id], meta, why)  # engine's text
        closed = tk.escalation_closed(state, meta, escalation_id)
        state = tk.evolve(state, closed[0])
        events += closed
    return events
