"""What commands return and what ticket queries show: application-level read models."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from engine.domain.sla import SlaView


class CommandResult(BaseModel):
    """The outcome of one command: what changed and where it sits in the log."""

    model_config = ConfigDict(frozen=True)

    aggregate_id: UUID
    version: int
    position: int
    etag: str
    status_code: int = 200
    extra: dict[str, Any] = {}
    replayed: bool = False


def ticket_etag(ticket_version: int, assignment_version: int) -> str:
    """The ticket resource's version: the ticket's and its assignment's versions."""
    return f'"{ticket_version}.{assignment_version}"'


def stream_etag(version: int) -> str:
    """A one-stream resource's version (an escalation, an agent, a configuration)."""
    return f'"{version}"'


class EscalationDetails(BaseModel):
    """One escalation; the fields the caller's role may not read (the README's visibility
    table) are null."""

    id: UUID
    ticket_id: UUID
    status: str
    kind: str
    target_type: str | None
    target: str | None
    level: int
    trigger: str | None
    reason: str | None
    vendor_reference: str | None
    outcome: str | None
    version: int

    # The event fields each shown field is folded from (permissions.shown_to).
    sources: ClassVar[dict[str, tuple[str, ...]]] = {
        "target_type": ("EscalationRaised.target_type",),
        "target": ("EscalationRaised.target",),
        "trigger": ("EscalationRaised.trigger",),
        "reason": ("EscalationRaised.reason",),
        "vendor_reference": ("VendorReferenceRecorded.reference",),
        "outcome": ("EscalationResolved.note", "EscalationWithdrawn.reason"),
    }


class TicketDetails(BaseModel):
    """A ticket as a person sees it: its own state plus its routing; the fields the
    caller's role may not read (the README's visibility table) are null."""

    id: UUID
    version: int
    etag: str
    status: str
    title: str
    description: str
    requester_id: str
    requester_name: str | None
    requester_email: str | None
    channel: str
    category: str
    impact: str
    urgency: str
    priority: str | None
    priority_override_reason: str | None
    queue: str | None
    assignee_id: UUID | None
    assignment_accepted: bool
    assignment_version: int
    escalation_level: int
    open_escalations: list[UUID]
    opened_at: datetime
    updated_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    resolution_code: str | None
    resolution_note: str | None
    pending_reason: str | None
    waiting_on: str | None
    reopen_count: int
    csat_score: int | None
    csat_comment: str | None
    links: list[dict[str, str]]
    merged_into: UUID | None
    cancel_reason: str | None
    allowed_actions: list[str]
    sla: SlaView | None = None

    # The event fields each (nullable) shown field is folded from (permissions.shown_to).
    sources: ClassVar[dict[str, tuple[str, ...]]] = {
        "requester_name": ("TicketOpened.requester_name",),
        "requester_email": ("TicketOpened.requester_email",),
        "priority_override_reason": ("TicketTriaged.override_reason",),
        "queue": ("AssignedToQueue.queue", "AssignedToAgent.queue", "Reassigned.queue"),
        "assignee_id": ("AssignedToAgent.agent_id", "Reassigned.agent_id"),
        "resolution_code": ("TicketResolved.resolution_code",),
        "resolution_note": ("TicketResolved.note",),
        "pending_reason": ("TicketPended.reason",),
        "waiting_on": ("TicketPended.waiting_on",),
        "csat_comment": ("SatisfactionRated.comment",),
        "merged_into": ("TicketMerged.into_ticket_id",),
        "cancel_reason": ("TicketCancelled.reason",),
    }
