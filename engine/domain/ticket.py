"""The Ticket aggregate as a Decider: commands in, events out, state folded from events.

The ticket owns its lifecycle (``new -> in_progress <-> pending -> resolved ->
closed``, or ``cancelled``); whether it is assigned is the Assignment aggregate's
fact, so the status a person sees (``assigned``) is derived by ``public_status``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from engine.domain.base import (
    CommandMeta,
    DomainEvent,
    EventFactory,
    InvalidTransitionError,
    RuleViolationError,
)
from engine.domain.priority import Level, Priority, PriorityMatrix


class Channel(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    CHAT = "chat"
    WEB = "web"
    API = "api"


class Lifecycle(StrEnum):
    """The ticket's own lifecycle states (``assigned`` is derived, see public_status)."""

    NEW = "new"
    IN_PROGRESS = "in_progress"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class Relation(StrEnum):
    PARENT = "parent"
    CHILD = "child"
    RELATED = "related"
    DUPLICATE_OF = "duplicate_of"
    DUPLICATED_BY = "duplicated_by"
    MERGED_FROM = "merged_from"


INVERSE_RELATION = {
    Relation.PARENT: Relation.CHILD,
    Relation.CHILD: Relation.PARENT,
    Relation.RELATED: Relation.RELATED,
    Relation.DUPLICATE_OF: Relation.DUPLICATED_BY,
    Relation.DUPLICATED_BY: Relation.DUPLICATE_OF,
}

Visibility = Literal["public", "internal"]
WaitingOn = Literal["customer", "vendor", "other"]
ShortText = Field(min_length=1, max_length=2000)


# --- events ---------------------------------------------------------------------


class TicketEvent(DomainEvent):
    aggregate_type = "Ticket"


class TicketOpened(TicketEvent):
    type_name = "TicketOpened"
    personal_fields = ("title", "description", "requester_name", "requester_email")
    subject_field = "requester_id"
    title: str
    description: str
    requester_id: str
    requester_name: str | None = None
    requester_email: str | None = None
    channel: Channel
    category: str
    impact: Level
    urgency: Level


class TicketTriaged(TicketEvent):
    type_name = "TicketTriaged"
    impact: Level
    urgency: Level
    matrix_priority: Priority
    priority: Priority
    override_reason: str | None = None


class TicketCommented(TicketEvent):
    type_name = "TicketCommented"
    personal_fields = ("body",)
    subject_field = "subject_id"
    comment_id: UUID
    body: str
    visibility: Visibility
    author_role: str
    subject_id: str | None = Field(default=None, description="the ticket's requester")


class TicketWorkStarted(TicketEvent):
    type_name = "TicketWorkStarted"


class TicketPended(TicketEvent):
    type_name = "TicketPended"
    reason: str
    waiting_on: WaitingOn


class TicketResumed(TicketEvent):
    type_name = "TicketResumed"
    note: str | None = None


class TicketResolved(TicketEvent):
    type_name = "TicketResolved"
    resolution_code: str
    note: str


class TicketReopened(TicketEvent):
    type_name = "TicketReopened"
    reason: str


class TicketClosed(TicketEvent):
    type_name = "TicketClosed"
    reason: str | None = None


class TicketCancelled(TicketEvent):
    type_name = "TicketCancelled"
    reason: str


class TicketLinked(TicketEvent):
    type_name = "TicketLinked"
    relation: Relation
    other_ticket_id: UUID


class TicketMerged(TicketEvent):
    type_name = "TicketMerged"
    into_ticket_id: UUID
    reason: str | None = None


class SatisfactionRated(TicketEvent):
    type_name = "SatisfactionRated"
    personal_fields = ("comment",)
    subject_field = "subject_id"
    score: int = Field(ge=1, le=5)
    comment: str | None = None
    subject_id: str | None = Field(default=None, description="the ticket's requester")


class TicketEscalated(TicketEvent):
    type_name = "TicketEscalated"
    escalation_id: UUID
    level: int
    escalation_level: int


class TicketEscalationClosed(TicketEvent):
    type_name = "TicketEscalationClosed"
    escalation_id: UUID
    escalation_level: int


# --- state ----------------------------------------------------------------------


class Ticket(BaseModel):
    """The ticket as folded from its events."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    version: int
    lifecycle: Lifecycle
    title: str
    description: str
    requester_id: str
    requester_name: str | None
    requester_email: str | None
    channel: Channel
    category: str
    impact: Level
    urgency: Level
    priority: Priority | None = None
    priority_override_reason: str | None = None
    opened_at: datetime
    updated_at: datetime
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    resolution_code: str | None = None
    resolution_note: str | None = None
    pending_reason: str | None = None
    waiting_on: WaitingOn | None = None
    reopen_count: int = 0
    csat_score: int | None = None
    csat_comment: str | None = None
    links: tuple[tuple[Relation, UUID], ...] = ()
    merged_into: UUID | None = None
    cancel_reason: str | None = None
    open_escalations: tuple[tuple[UUID, int], ...] = ()
    escalation_level: int = 0
    comment_count: int = 0

    @property
    def is_active(self) -> bool:
        return self.lifecycle in (Lifecycle.NEW, Lifecycle.IN_PROGRESS, Lifecycle.PENDING)


def evolve(state: Ticket | None, event: DomainEvent) -> Ticket:
    """Fold one event into the state. Never raises on a valid history."""
    v, at = event.originator_version, event.occurred_at
    if isinstance(event, TicketOpened):
        return Ticket(
            id=event.originator_id,
            version=v,
            lifecycle=Lifecycle.NEW,
            title=event.title,
            description=event.description,
            requester_id=event.requester_id,
            requester_name=event.requester_name,
            requester_email=event.requester_email,
            channel=event.channel,
            category=event.category,
            impact=event.impact,
            urgency=event.urgency,
            opened_at=at,
            updated_at=at,
        )
    assert state is not None, "a ticket's first event is TicketOpened"
    s = state.model_copy(update={"version": v, "updated_at": at})
    match event:
        case TicketTriaged():
            return s.model_copy(
                update={
                    "impact": event.impact,
                    "urgency": event.urgency,
                    "priority": event.priority,
                    "priority_override_reason": event.override_reason,
                }
            )
        case TicketCommented():
            first = s.first_response_at
            if first is None and event.visibility == "public" and event.author_role != "requester":
                first = at
            return s.model_copy(
                update={"comment_count": s.comment_count + 1, "first_response_at": first}
            )
        case TicketWorkStarted():
            return s.model_copy(
                update={
                    "lifecycle": Lifecycle.IN_PROGRESS,
                    "first_response_at": s.first_response_at or at,
                }
            )
        case TicketPended():
            return s.model_copy(
                update={
                    "lifecycle": Lifecycle.PENDING,
                    "pending_reason": event.reason,
                    "waiting_on": event.waiting_on,
                }
            )
        case TicketResumed():
            return s.model_copy(
                update={
                    "lifecycle": Lifecycle.IN_PROGRESS,
                    "pending_reason": None,
                    "waiting_on": None,
                }
            )
        case TicketResolved():
            return s.model_copy(
                update={
                    "lifecycle": Lifecycle.RESOLVED,
                    "resolved_at": at,
                    "resolution_code": event.resolution_code,
                    "resolution_note": event.note,
                    "pending_reason": None,
                    "waiting_on": None,
                    "first_response_at": s.first_response_at or at,
                }
            )
        case TicketReopened():
            return s.model_copy(
                update={
                    "lifecycle": Lifecycle.NEW,
                    "reopen_count": s.reopen_count + 1,
                    "resolved_at": None,
                    "resolution_code": None,
                    "resolution_note": None,
                }
            )
        case TicketClosed():
            return s.model_copy(update={"lifecycle": Lifecycle.CLOSED, "closed_at": at})
        case TicketCancelled():
            return s.model_copy(
                update={
                    "lifecycle": Lifecycle.CANCELLED,
                    "closed_at": at,
                    "cancel_reason": event.reason,
                    "pending_reason": None,
                    "waiting_on": None,
                }
            )
        case TicketLinked():
            link = (event.relation, event.other_ticket_id)
            return s.model_copy(update={"links": (*s.links, link)})
        case TicketMerged():
            return s.model_copy(
                update={
                    "lifecycle": Lifecycle.CLOSED,
                    "closed_at": at,
                    "merged_into": event.into_ticket_id,
                    "pending_reason": None,
                    "waiting_on": None,
                }
            )
        case SatisfactionRated():
            return s.model_copy(update={"csat_score": event.score, "csat_comment": event.comment})
        case TicketEscalated():
            opened = (*s.open_escalations, (event.escalation_id, event.level))
            return s.model_copy(
                update={"open_escalations": opened, "escalation_level": event.escalation_level}
            )
        case TicketEscalationClosed():
            remaining = tuple(e for e in s.open_escalations if e[0] != event.escalation_id)
            return s.model_copy(
                update={"open_escalations": remaining, "escalation_level": event.escalation_level}
            )
    return s


def fold(events: list[DomainEvent]) -> Ticket | None:
    state: Ticket | None = None
    for event in events:
        state = evolve(state, event)
    return state


# --- the derived status and what each status allows ------------------------------


def public_status(ticket: Ticket, assignee: UUID | None) -> str:
    """The status people see: ``assigned`` is a new ticket that has an agent."""
    if ticket.lifecycle == Lifecycle.NEW and assignee is not None:
        return "assigned"
    return ticket.lifecycle.value


ALLOWED: dict[str, frozenset[str]] = {
    "new": frozenset({"triage", "comment", "assign", "cancel", "link", "merge", "escalate"}),
    "assigned": frozenset(
        {
            "triage",
            "comment",
            "assign",
            "accept",
            "start",
            "release",
            "resolve",
            "cancel",
            "link",
            "merge",
            "escalate",
        }
    ),
    "in_progress": frozenset(
        {"triage", "comment", "assign", "pend", "resolve", "cancel", "link", "merge", "escalate"}
    ),
    "pending": frozenset(
        {"triage", "comment", "assign", "resume", "resolve", "cancel", "link", "merge", "escalate"}
    ),
    "resolved": frozenset({"comment", "reopen", "close", "rate", "link"}),
    "closed": frozenset({"rate"}),
    "cancelled": frozenset(),
}


def allowed_actions(
    ticket: Ticket, assignee: UUID | None, accepted: bool = False
) -> frozenset[str]:
    """What the ticket's status allows now (an accepted assignment is not accepted twice)."""
    allowed = ALLOWED[public_status(ticket, assignee)]
    return allowed - {"accept"} if accepted else allowed


def require(ticket: Ticket, assignee: UUID | None, action: str, accepted: bool = False) -> None:
    """Refuse ``action`` unless the ticket's current status allows it."""
    allowed = allowed_actions(ticket, assignee, accepted)
    if action not in allowed:
        status = public_status(ticket, assignee)
        raise InvalidTransitionError("ticket", status, action, allowed)


# --- commands and decisions -----------------------------------------------------


class OpenTicket(BaseModel):
    model_config = ConfigDict(frozen=True)

    ticket_id: UUID
    title: str
    description: str
    requester_id: str
    requester_name: str | None = None
    requester_email: str | None = None
    channel: Channel
    category: str
    impact: Level
    urgency: Level


def open_ticket(cmd: OpenTicket, meta: CommandMeta, matrix: PriorityMatrix) -> list[DomainEvent]:
    """Open a ticket and triage it at once from its impact and urgency."""
    make = EventFactory(meta)
    data = cmd.model_dump(exclude={"ticket_id"})
    opened = make.make(TicketOpened, cmd.ticket_id, 1, **data)
    priority = matrix.priority(cmd.impact, cmd.urgency)
    triaged = make.make(
        TicketTriaged,
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
    return [
        EventFactory(meta).make(
            TicketTriaged,
            t.id,
            t.version + 1,
            impact=impact,
            urgency=urgency,
            matrix_priority=computed,
            priority=chosen,
            override_reason=override_reason if chosen != computed else None,
        )
    ]


def comment(
    t: Ticket,
    assignee: UUID | None,
    meta: CommandMeta,
    comment_id: UUID,
    body: str,
    visibility: Visibility,
    author_role: str,
) -> list[DomainEvent]:
    require(t, assignee, "comment")
    return [
        EventFactory(meta).make(
            TicketCommented,
            t.id,
            t.version + 1,
            comment_id=comment_id,
            body=body,
            visibility=visibility,
            author_role=author_role,
            subject_id=t.requester_id,
        )
    ]


def start(t: Ticket, assignee: UUID | None, meta: CommandMeta) -> list[DomainEvent]:
    require(t, assignee, "start")
    return [EventFactory(meta).make(TicketWorkStarted, t.id, t.version + 1)]


def pend(
    t: Ticket, assignee: UUID | None, meta: CommandMeta, reason: str, waiting_on: WaitingOn
) -> list[DomainEvent]:
    require(t, assignee, "pend")
    return [
        EventFactory(meta).make(
            TicketPended, t.id, t.version + 1, reason=reason, waiting_on=waiting_on
        )
    ]


def resume(
    t: Ticket, assignee: UUID | None, meta: CommandMeta, note: str | None
) -> list[DomainEvent]:
    require(t, assignee, "resume")
    return [EventFactory(meta).make(TicketResumed, t.id, t.version + 1, note=note)]


def resolve(
    t: Ticket, assignee: UUID | None, meta: CommandMeta, resolution_code: str, note: str
) -> list[DomainEvent]:
    require(t, assignee, "resolve")
    return [
        EventFactory(meta).make(
            TicketResolved, t.id, t.version + 1, resolution_code=resolution_code, note=note
        )
    ]


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
    return [EventFactory(meta).make(TicketReopened, t.id, t.version + 1, reason=reason)]


def close(
    t: Ticket, assignee: UUID | None, meta: CommandMeta, reason: str | None
) -> list[DomainEvent]:
    require(t, assignee, "close")
    return [EventFactory(meta).make(TicketClosed, t.id, t.version + 1, reason=reason)]


def cancel(t: Ticket, assignee: UUID | None, meta: CommandMeta, reason: str) -> list[DomainEvent]:
    require(t, assignee, "cancel")
    return [EventFactory(meta).make(TicketCancelled, t.id, t.version + 1, reason=reason)]


def link(
    t: Ticket,
    other: Ticket,
    assignee: UUID | None,
    meta: CommandMeta,
    relation: Relation,
) -> list[DomainEvent]:
    """Link two tickets: the inverse relation is recorded on the other ticket too."""
    require(t, assignee, "link")
    if other.id == t.id:
        raise RuleViolationError("a ticket cannot be linked to itself")
    if relation not in INVERSE_RELATION:
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
        make.make(TicketLinked, t.id, t.version + 1, relation=relation, other_ticket_id=other.id),
        make.make(
            TicketLinked,
            other.id,
            other.version + 1,
            relation=INVERSE_RELATION[relation],
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
        make.make(TicketMerged, t.id, t.version + 1, into_ticket_id=target.id, reason=reason),
        make.make(
            TicketLinked,
            target.id,
            target.version + 1,
            relation=Relation.MERGED_FROM,
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
    return [
        EventFactory(meta).make(
            SatisfactionRated,
            t.id,
            t.version + 1,
            score=score,
            comment=comment_text,
            subject_id=t.requester_id,
        )
    ]


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
        TicketEscalated,
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
    return [
        EventFactory(meta).make(
            TicketEscalationClosed,
            t.id,
            t.version + 1,
            escalation_id=escalation_id,
            escalation_level=level,
        )
    ]
