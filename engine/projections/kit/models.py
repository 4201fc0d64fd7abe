"""What the views answer: plain pydantic models, independent of the view tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from engine.domain.assignment import Assignment
from engine.domain.escalation import Escalation
from engine.domain.ticket import Ticket


class _Answer(BaseModel):
    model_config = ConfigDict(frozen=True, serialize_by_alias=True, validate_by_name=True)


# --- queue view ---------------------------------------------------------------------


class QueueTicket(_Answer):
    """A ticket as a queue page, a workload or a search shows it."""

    ticket_id: UUID
    title: str
    requester_id: str
    requester_name: str | None
    channel: str
    category: str
    impact: str
    urgency: str
    priority: str | None
    status: str
    queue: str | None
    assignee_id: UUID | None
    assignee_name: str | None
    accepted: bool
    escalation_level: int
    escalated: bool
    sla_due_at: datetime | None = Field(
        description="the earliest due time of a running SLA target (null while paused, "
        "met or stopped)"
    )
    sla_breached: bool
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    closed_at: datetime | None
    sla_status: str | None = Field(
        default=None,
        description="on_track, at_risk, breached, paused, met or stopped, as the log records "
        "it (null before the SLA clock starts)",
    )
    sla_at_risk: bool = False
    sla_first_response_due_at: datetime | None = None
    sla_resolution_due_at: datetime | None = None
    sla_policy_version: int | None = None
    routing_note: str | None = Field(
        default=None, description="why automatic routing left the ticket unassigned"
    )

    # The event fields each (nullable) field is folded from: a caller who may not read
    # one of them sees the field null (engine.app.permissions.shown_to).
    sources: ClassVar[dict[str, tuple[str, ...]]] = {
        "requester_name": ("TicketOpened.requester_name",),
        "assignee_name": ("AgentRegistered.name",),
        "routing_note": ("RoutingDeferred.reason",),
        "queue": ("AssignedToQueue.queue", "AssignedToAgent.queue", "Reassigned.queue"),
        "assignee_id": ("AssignedToAgent.agent_id", "Reassigned.agent_id"),
    }


class QueueSummary(_Answer):
    """A queue's active tickets, counted."""

    name: str
    description: str | None
    active: int
    by_status: dict[str, int]
    by_priority: dict[str, int]
    unassigned: int
    escalated: int


class AgentWorkload(_Answer):
    agent_id: UUID
    name: str | None
    capacity: int | None
    agent_active: bool
    queues: list[str]
    load: int = Field(description="active tickets assigned to the agent")
    by_priority: dict[str, int]
    tickets: list[QueueTicket]


# --- audit view ---------------------------------------------------------------------


class FieldChange(_Answer):
    field: str
    from_: Any = Field(alias="from")
    to: Any


class HistoryEntry(_Answer):
    """One event in a ticket's timeline."""

    position: int
    ticket_id: UUID
    aggregate_type: str
    aggregate_id: UUID
    aggregate_version: int
    event_id: UUID
    type: str
    occurred_at: datetime
    actor: str
    reason: str | None
    changes: list[FieldChange]
    internal: bool
    data: dict[str, Any]


class TicketAsOf(_Answer):
    """A ticket exactly as it stood at a past moment (or position)."""

    position: int = Field(description="position of the last event folded in")
    status: str
    ticket: Ticket
    assignment: Assignment
    escalations: list[Escalation]


# --- reports --------------------------------------------------------------------------


class DurationStats(_Answer):
    count: int
    median_seconds: float | None
    p90_seconds: float | None


class BacklogByAge(_Answer):
    under_1d: int
    from_1d_to_3d: int
    from_3d_to_7d: int
    from_7d_to_30d: int
    over_30d: int
    total: int


class TargetCompliance(_Answer):
    """How one SLA target fared in a window (docs/metrics.md, "SLA compliance")."""

    measured: int = Field(description="tickets whose target was met in the window")
    within_target: int = Field(description="of those, met on time")
    rate: float | None = Field(description="within_target / measured; null when none")
    breached: int = Field(description="tickets with a breach of the target in the window")


class SlaCompliance(_Answer):
    first_response: TargetCompliance
    resolution: TargetCompliance


class ServiceReport(_Answer):
    from_: datetime = Field(alias="from")
    to: datetime
    queue: str | None
    opened: int
    resolved: int
    backlog: BacklogByAge
    first_response: DurationStats
    resolution: DurationStats
    reopen_rate: float | None
    escalation_rate: float | None
    csat_average: float | None
    csat_responses: int
    sla: SlaCompliance
    position: int = Field(description="the reports view's position when computed")


class AgentReportRow(_Answer):
    agent_id: UUID
    name: str | None
    resolved: int
    handle_time: DurationStats
    reopen_rate: float | None
    csat_average: float | None
    csat_responses: int
    sla: SlaCompliance


class AgentReport(_Answer):
    from_: datetime = Field(alias="from")
    to: datetime
    agents: list[AgentReportRow]
    position: int


# --- event stream ---------------------------------------------------------------------


class StreamEvent(_Answer):
    """A notification as published: its position and its envelope, unchanged."""

    position: int
    envelope: dict[str, Any]
