"""The Ticket as folded from its events, the status a person sees (``public_status``) and
what each status allows.

The ticket owns its lifecycle (``new -> in_progress <-> pending -> resolved ->
closed``, or ``cancelled``); whether it is assigned is the Assignment aggregate's
fact, so the status a person sees (``assigned``) is derived by ``public_status``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from engine.domain.base import DomainEvent, InvalidTransitionError, Kind
from engine.domain.priority import Level, Priority
from engine.domain.ticket import events as ev


class Lifecycle(StrEnum):
    """The ticket's own lifecycle states (``assigned`` is derived, see public_status)."""

    NEW = "new"
    IN_PROGRESS = "in_progress"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELLED = "cancelled"


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
    channel: ev.Channel
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
    waiting_on: ev.WaitingOn | None = None
    reopen_count: int = 0
    csat_score: int | None = None
    csat_comment: str | None = None
    links: tuple[tuple[ev.Relation, UUID], ...] = ()
    merged_into: UUID | None = None
    cancel_reason: str | None = None
    open_escalations: tuple[tuple[UUID, int], ...] = ()
    escalation_level: int = 0
    comment_count: int = 0

    @property
    def is_active(self) -> bool:
        return self.lifecycle in (Lifecycle.NEW, Lifecycle.IN_PROGRESS, Lifecycle.PENDING)


# What a ticket that is no longer pending clears.
_NOT_WAITING: dict[str, None] = {"pending_reason": None, "waiting_on": None}


def evolve(state: Ticket | None, event: DomainEvent) -> Ticket:
    """Fold one event into the state. Never raises on a valid history."""
    v, at = event.originator_version, event.occurred_at
    if isinstance(event, ev.TicketOpened):
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
        case ev.TicketTriaged():
            return s.model_copy(
                update={
                    "impact": event.impact,
                    "urgency": event.urgency,
                    "priority": event.priority,
                    "priority_override_reason": event.override_reason,
                }
            )
        case ev.TicketCommented():
            first = s.first_response_at
            if first is None and event.visibility == "public" and event.author_role != "requester":
                first = at
            return s.model_copy(
                update={"comment_count": s.comment_count + 1, "first_response_at": first}
            )
        case ev.TicketWorkStarted():
            return s.model_copy(
                update={
                    "lifecycle": Lifecycle.IN_PROGRESS,
                    "first_response_at": s.first_response_at or at,
                }
            )
        case ev.TicketPended():
            return s.model_copy(
                update={
                    "lifecycle": Lifecycle.PENDING,
                    "pending_reason": event.reason,
                    "waiting_on": event.waiting_on,
                }
            )
        case ev.TicketResumed():
            return s.model_copy(
                update={
                    "lifecycle": Lifecycle.IN_PROGRESS,
                    **_NOT_WAITING,
                }
            )
        case ev.TicketResolved():
            return s.model_copy(
                update={
                    "lifecycle": Lifecycle.RESOLVED,
                    "resolved_at": at,
                    "resolution_code": event.resolution_code,
                    "resolution_note": event.note,
                    **_NOT_WAITING,
                    "first_response_at": s.first_response_at or at,
                }
            )
        case ev.TicketReopened():
            return s.model_copy(
                update={
                    "lifecycle": Lifecycle.NEW,
                    "reopen_count": s.reopen_count + 1,
                    "resolved_at": None,
                    "resolution_code": None,
                    "resolution_note": None,
                }
            )
        case ev.TicketClosed():
            return s.model_copy(update={"lifecycle": Lifecycle.CLOSED, "closed_at": at})
        case ev.TicketCancelled():
            return s.model_copy(
                update={
                    "lifecycle": Lifecycle.CANCELLED,
                    "closed_at": at,
                    "cancel_reason": event.reason,
                    **_NOT_WAITING,
                }
            )
        case ev.TicketLinked():
            link = (event.relation, event.other_ticket_id)
            return s.model_copy(update={"links": (*s.links, link)})
        case ev.TicketMerged():
            return s.model_copy(
                update={
                    "lifecycle": Lifecycle.CLOSED,
                    "closed_at": at,
                    "merged_into": event.into_ticket_id,
                    **_NOT_WAITING,
                }
            )
        case ev.SatisfactionRated():
            return s.model_copy(update={"csat_score": event.score, "csat_comment": event.comment})
        case ev.TicketEscalated():
            opened = (*s.open_escalations, (event.escalation_id, event.level))
            return s.model_copy(
                update={"open_escalations": opened, "escalation_level": event.escalation_level}
            )
        case ev.TicketEscalationClosed():
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


KIND = Kind("Ticket", evolve)
