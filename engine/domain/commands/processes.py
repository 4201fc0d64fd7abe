"""The commands of the engine's own processes, and their decisions: bringing a ticket's
SLA clock up to a moment, the escalations an SLA event calls for, routing a queued
ticket to an agent, and recording a signed checkpoint. They carry the time they are
decided at, like every command; the processes send them through the same runner."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import AwareDatetime

from engine.domain import assignment as asg
from engine.domain import directory as dirs
from engine.domain import escalation as esc
from engine.domain import routing, sla
from engine.domain import ticket as tk
from engine.domain.audit import CHECKPOINTS_ID, CheckpointRecorded
from engine.domain.base import CommandMeta, DomainEvent, EventFactory, derived_id
from engine.domain.commands.base import Command
from engine.domain.priority import Priority

# --- the SLA clock -------------------------------------------------------------------------


class AdvanceSlaClock(Command):
    """Bring a ticket's clock up to ``until``: what fell due before, then the clock's
    reaction to the ticket's ``event`` (None: only time passed), then what new terms make
    due by ``until`` (an upgrade can be late at once)."""

    ticket_id: UUID
    event: DomainEvent | None = None
    until: AwareDatetime


@dataclass(frozen=True)
class ClockState:
    """The ticket's clock, and what a triage's new term reads from the configuration
    (asked only when a triage starts a term: the terms in force at its time, and when the
    ticket was opened)."""

    clock: sla.SlaClock | None
    terms: Callable[[Priority], sla.ClockTerms]
    opened_at: Callable[[], datetime]


def advance_clock(c: AdvanceSlaClock, s: ClockState, meta: CommandMeta) -> list[DomainEvent]:
    before = sla.decide(s.clock, sla.RecordDue(until=c.until), meta) if s.clock else []
    state = _folded(s.clock, before)
    reaction: list[DomainEvent] = []
    if c.event is not None:
        command = sla.clock_command_for(c.event, state, s.terms, s.opened_at)
        reaction = sla.decide(state, command, meta) if command is not None else []
    state = _folded(state, reaction)
    after = sla.decide(state, sla.RecordDue(until=c.until), meta) if reaction and state else []
    return [*before, *reaction, *after]


def fallen_due(events: Sequence[DomainEvent]) -> tuple[sla.SlaAtRisk | sla.SlaBreached, ...]:
    """The at-risk and breach events among a clock's new events (they may escalate)."""
    return tuple(e for e in events if isinstance(e, sla.SlaAtRisk | sla.SlaBreached))


def _folded(state: sla.SlaClock | None, events: list[DomainEvent]) -> sla.SlaClock | None:
    for event in events:
        state = sla.evolve(state, event)
    return state


class EscalateForSla(Command):
    """Raise the escalations the queue's rules ask for on at-risk and breach events."""

    ticket_id: UUID
    due: tuple[DomainEvent, ...]
    at: AwareDatetime  # the queue's rules in force then apply


@dataclass(frozen=True)
class EscalationContext:
    """The ticket, its assignment, the queue's rules in force and its lead."""

    ticket: tk.Ticket
    assignment: asg.Assignment
    rules: sla.EscalationRules
    lead: str | None


def escalate_for_sla(
    c: EscalateForSla, s: EscalationContext, meta: CommandMeta
) -> list[DomainEvent]:
    ticket, assignment = s.ticket, s.assignment
    events: list[DomainEvent] = []
    for event in c.due:
        if not isinstance(event, sla.SlaAtRisk | sla.SlaBreached):
            continue
        status = tk.public_status(ticket, assignment.agent_id)
        if "escalate" not in tk.ALLOWED[status]:
            continue  # The ticket moved on (resolved, cancelled): nothing to escalate.
        plan = sla.plan_escalation(event, s.rules, s.lead)
        if plan is None:
            continue
        trigger: esc.Trigger = "sla_at_risk" if isinstance(event, sla.SlaAtRisk) else "sla_breached"
        escalation_id = derived_id(
            "sla-escalation", f"{c.ticket_id}:{event.target}:{event.term}:{trigger}"
        )
        caused = meta.model_copy(update={"causation_id": event.event_id})
        # At risk tells the lead at the current level (at least 1); a breach goes up one.
        wanted = (
            max(1, ticket.escalation_level)
            if trigger == "sla_at_risk"
            else ticket.escalation_level + 1
        )
        level, recorded = tk.escalated(ticket, assignment.agent_id, caused, escalation_id, wanted)
        recorded += esc.raise_escalation(
            caused,
            escalation_id,
            c.ticket_id,
            plan.kind,
            plan.target_type,
            plan.target,
            plan.reason,
            level,
            trigger,
        )
        ticket = tk.evolve(ticket, recorded[0])
        events += recorded
    return events


# --- routing ----------------------------------------------------------------------------------


class RouteTicket(Command):
    """Route a queued ticket to an agent of its queue by the queue's policy, as agents'
    availability stands ``at``; or record that nobody could take it (``record_deferral``)."""

    ticket_id: UUID
    at: AwareDatetime
    record_deferral: bool = True


@dataclass(frozen=True)
class RoutingState:
    """The ticket's assignment and whether it is still open, the queue's policy and
    cursor, and every agent with their availability."""

    assignment: asg.Assignment
    active: bool
    policy: routing.QueueRouting | None
    cursor: routing.RoutingCursor | None
    agents: Mapping[UUID, tuple[dirs.Agent, Any]]

    @property
    def routable(self) -> bool:
        """Whether the ticket waits in a queue that routes by itself."""
        return (
            self.assignment.queue is not None
            and self.assignment.agent_id is None
            and self.policy is not None
            and self.policy.policy != "manual"
            and self.active
        )


def route_ticket(c: RouteTicket, s: RoutingState, meta: CommandMeta) -> list[DomainEvent]:
    if not s.routable:
        return []
    assert s.policy is not None and s.cursor is not None and s.assignment.queue is not None
    agents = {agent_id: agent for agent_id, (agent, _) in s.agents.items()}
    members = routing.candidates(
        s.assignment.queue,
        list(agents.values()),
        {agent_id: a for agent_id, (_, a) in s.agents.items()},
        c.at,
    )
    decision = routing.decide(s.policy, s.cursor, members)
    if decision.agent_id is None and not c.record_deferral:
        return []
    return routing.route(decision, s.assignment, agents, s.cursor, meta)


# --- checkpoints ------------------------------------------------------------------------------


class RecordCheckpoint(Command):
    """Record the signed Merkle root of every stream's head at a log position."""

    position: int
    stream_count: int
    merkle_root: str
    public_key: str
    signature: str


def record_checkpoint(c: RecordCheckpoint, last: int, meta: CommandMeta) -> list[DomainEvent]:
    """The next checkpoint after version ``last`` of the checkpoint stream."""
    return [EventFactory(meta).make(CheckpointRecorded, CHECKPOINTS_ID, last + 1, **c.model_dump())]
