"""The Ticket's commands: each checks what the status allows (``require``) and the
ticket's rules, and returns the events to record."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from engine.domain.base import CommandMeta, DomainEvent, EventFactory, RuleViolationError
from engine.domain.priority import Level, Priority, PriorityMatrix
from engine.domain.ticket import events as ev
from engine.domain.ticket.state import Lifecycle, Ticket, require


def _record(
    t: Ticket, meta: CommandMeta, event: type[ev.TicketEvent], **data: Any
) -> list[DomainEvent]:
    """The ticket's next event, stamped with the command's metadata; its free text is
    sealed under the ticket's requester (see ``requester_subject``)."""
    if event.subject_field == "subject_id":
        data.setdefault("subject_id", t.requester_id)
    return [EventFactory(meta).make(event, t.id, t.version + 1, **data)]


class OpenTicket(BaseModel):
    model_config = ConfigDict(frozen=True)

    ticket_id: UUID
    title: str
    description: str
    requester_id: str
    requester_name: str | None = None
    requester_email: str | None = None
    channel: ev.Channel
    category: str
    impact: Level
    urgency: Level


def open_ticket(cmd: OpenTicket, meta: CommandMeta, matrix: PriorityMatrix) -> list[DomainEvent]:
    """Open a ticket and triage it at once from its impact and urgency."""
    make = EventFactory(meta)
    data = cmd.model_dump(exclude={"ticket_id"})
    opened = make.make(ev.TicketOpened, cmd.ticket_id, 1, **data)
    priority = matrix.priority(cmd.impact, cmd.urgency)
    triaged = make.make(
        ev.TicketTriaged,
        cmd.ticket_id,
        2,
        impact=cmd.impact,
        urgency=cmd.urgency,
        matrix_priority=priority,
        priority=priority,
    )
    return [opened, triaged]


def triage(
    t: Ticket,
    assignee: UUID | None,
    meta: CommandMeta,
    matrix: PriorityMatrix,
    impact: Level,
    urgency: Level,
    priority: Priority | None,
    override_reason: str | None,
) -> list[DomainEvent]:
    require(t, assignee, "triage")
    computed = matrix.priority(impact, urgency)
    if priority is not None and priority != computed and not override_reason:
        raise RuleViolationError(
            f"priority {priority} differs from the matrix ({computed} for impact {impact}, "
            f"urgency {urgency}): an override needs a reason"
        )
    chosen = priority or computed
    return _record(
        t,
        meta,
        ev.TicketTriaged,
        impact=impact,
        urgency=urgency,
        matrix_priority=computed,
        priority=chosen,
        override_reason=override_reason if chosen != computed else None,
    )


def comment(
    t: Ticket,
    assignee: UUID | None,
    meta: CommandMeta,
    comment_id: UUID,
    body: str,
    visibility: ev.Visibility,
    author_role: str,
) -> list[DomainEvent]:
    require(t, assignee, "comment")
    return _record(
        t,
        meta,
        ev.TicketCommented,
        comment_id=comment_id,
        body=body,
        visibility=visibility,
        author_role=author_role,
    )


def start(t: Ticket, assignee: UUID | None, meta: CommandMeta) -> list[DomainEvent]:
    require(t, assignee, "start")
    return _record(t, meta, ev.TicketWorkStarted)


def pend(
    t: Ticket, assignee: UUID | None, meta: CommandMeta, reason: str, waiting_on: ev.WaitingOn
) -> list[DomainEvent]:
    require(t, assignee, "pend")
    return _record(t, meta, ev.TicketPended, reason=reason, waiting_on=waiting_on)


def resume(
    t: Ticket, assignee: UUID | None, meta: CommandMeta, note: str | None
) -> list[DomainEvent]:
    require(t, assignee, "resume")
    return _record(t, meta, ev.TicketResumed, note=note)


def resolve(
    t: Ticket, assignee: UUID | None, meta: CommandMeta, resolution_code: str, note: str
) -> list[DomainEvent]:
    require(t, assignee, "resolve")
    return _record(t, meta, ev.TicketResolved, resolution_code=resolution_code, note=note)


def reopen(
    t: Ticket, assignee: UUID | None, meta: CommandMeta, reason: str, window: timedelta
) -> list[DomainEvent]:
    require(t, assignee, "reopen")
    assert t.resolved_at is not None
    if meta.occurred_at - t.resolved_at > window:
        raise RuleViolationError(
            f"the reopen window of {window} after resolution ({t.resolved_at.isoformat()}) "
            "has passed: open a new ticket and link it"
        )
    return _record(t, meta, ev.TicketReopened, reason=reason)


def close(
    t: Ticket, assignee: UUID | None, meta: CommandMeta, reason: str | None
) -> list[DomainEvent]:
    require(t, assignee, "close")
    return _record(t, meta, ev.TicketClosed, reason=reason)


def cancel(t: Ticket, assignee: UUID | None, meta: CommandMeta, reason: str) -> list[DomainEvent]:
    require(t, assignee, "cancel")
    return _record(t, meta, ev.TicketCancelled, reason=reason)


def link(
    t: Ticket,
    other: Ticket,
    assignee: UUID | None,
    meta: CommandMeta,
    relation: ev.Relation,
) -> list[DomainEvent]:
    """Link two tickets: the inverse relation is recorded on the other ticket too."""
    require(t, assignee, "link")
    if other.id == t.id:
        raise RuleViolationError("a ticket cannot be linked to itself")
    if relation not in ev.INVERSE_RELATION:
        raise RuleViolationError(f"relation {relation} is recorded by the engine, not by hand")
    existing = [r for r, o in t.links if o == other.id]
    if existing:
        raise RuleViolationError(
            f"ticket is already linked to {other.id} as {existing[0].value}: one link per pair"
        )
    if other.lifecycle == Lifecycle.CANCELLED:
        raise RuleViolationError(f"ticket {other.id} is cancelled and cannot be linked")
    make = EventFactory(meta)
    return [
        make.make(
            ev.TicketLinked, t.id, t.version + 1, relation=relation, other_ticket_id=other.id
        ),
        make.make(
            ev.TicketLinked,
            other.id,
            other.version + 1,
            relation=ev.INVERSE_RELATION[relation],
            other_ticket_id=t.id,
        ),
    ]


def merge(
    t: Ticket,
    target: Ticket,
    assignee: UUID | None,
    meta: CommandMeta,
    reason: str | None,
) -> list[DomainEvent]:
    """Merge ``t`` into ``target``: ``t`` closes with a pointer, ``target`` records it."""
    require(t, assignee, "merge")
    if target.id == t.id:
        raise RuleViolationError("a ticket cannot be merged into itself")
    if not target.is_active:
        raise RuleViolationError(
            f"ticket {target.id} is {target.lifecycle.value}: merge only into an open ticket"
        )
    make = EventFactory(meta)
    return [
        make.make(
            ev.TicketMerged,
            t.id,
            t.version + 1,
            into_ticket_id=target.id,
            reason=reason,
            subject_id=t.requester_id,
        ),
        make.make(
            ev.TicketLinked,
            target.id,
            target.version + 1,
            relation=ev.Relation.MERGED_FROM,
            other_ticket_id=t.id,
        ),
    ]


def rate(
    t: Ticket, assignee: UUID | None, meta: CommandMeta, score: int, comment_text: str | None
) -> list[DomainEvent]:
    require(t, assignee, "rate")
    if t.merged_into is not None:
        raise RuleViolationError("a merged ticket is rated on the ticket it was merged into")
    if t.csat_score is not None:
        raise RuleViolationError("satisfaction has already been rated for this ticket")
    return _record(t, meta, ev.SatisfactionRated, score=score, comment=comment_text)


def escalated(
    t: Ticket, assignee: UUID | None, meta: CommandMeta, escalation_id: UUID, level: int | None
) -> tuple[int, list[DomainEvent]]:
    """Record a new escalation on the ticket; returns the level it is raised at.

    The level defaults to one above the current one and may never be below it, so a
    ticket's escalation level never drops while an escalation is open.
    """
    require(t, assignee, "escalate")
    chosen = level if level is not None else t.escalation_level + 1
    if chosen < 1:
        raise RuleViolationError("an escalation level starts at 1")
    if chosen < t.escalation_level:
        raise RuleViolationError(
            f"the ticket is escalated at level {t.escalation_level}; "
            f"a new escalation cannot be raised at the lower level {chosen}"
        )
    event = EventFactory(meta).make(
        ev.TicketEscalated,
        t.id,
        t.version + 1,
        escalation_id=escalation_id,
        level=chosen,
        escalation_level=max(chosen, t.escalation_level),
    )
    return chosen, [event]


def escalation_closed(t: Ticket, meta: CommandMeta, escalation_id: UUID) -> list[DomainEvent]:
    """Record that one escalation ended; the level resets only when none stays open."""
    remaining = [e for e in t.open_escalations if e[0] != escalation_id]
    level = t.escalation_level if remaining else 0
    return _record(
        t, meta, ev.TicketEscalationClosed, escalation_id=escalation_id, escalation_level=level
    )
