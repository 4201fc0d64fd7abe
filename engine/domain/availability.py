"""Agent availability: a status and a schedule (working hours plus on-call windows).

The events sit on the Agent aggregate's stream (``directory.evolve_agent`` ignores them
but for the version), so a change of availability conflicts with a concurrent routing to
that agent, and this module folds the same stream separately.

An agent may take routed tickets at an instant when their status is ``available`` and
either they have no schedule (always on), the instant is within their working hours (any
weekday and hours, evenings and weekends included, in their time zone; holidays of their
calendar excluded), or it lies in one of their on-call windows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from engine.domain.base import (
    CommandMeta,
    DomainEvent,
    EventFactory,
    Kind,
    RuleViolationError,
    subject_id_field,
)
from engine.domain.calendar import BusinessCalendar
from engine.domain.directory import Agent, AgentEvent, AgentRegistered, agent_principal

AvailabilityStatus = Literal["available", "away", "offline"]


class OnCallWindow(BaseModel):
    """An interval during which the agent is on call, whatever their working hours."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: AwareDatetime
    end: AwareDatetime
    note: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _ordered(self) -> OnCallWindow:
        if self.end <= self.start:
            raise ValueError("an on-call window ends after it starts")
        return self


class AgentSchedule(BaseModel):
    """Working hours (a calendar; None: none) and on-call windows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hours: BusinessCalendar | None = None
    on_call: tuple[OnCallWindow, ...] = ()


class AgentAvailabilitySet(AgentEvent):
    """The agent's availability status changed."""

    type_name = "AgentAvailabilitySet"
    personal_fields = ("reason",)
    subject_field = "subject_id"
    status: AvailabilityStatus
    reason: str | None = None
    subject_id: str | None = subject_id_field("the agent")


class AgentScheduleSet(AgentEvent):
    """The agent's working hours and on-call windows changed."""

    type_name = "AgentScheduleSet"
    personal_fields = ("reason",)
    subject_field = "subject_id"
    schedule: AgentSchedule
    reason: str | None = None
    subject_id: str | None = subject_id_field("the agent")


class Availability(BaseModel):
    model_config = ConfigDict(frozen=True)

    agent_id: UUID
    version: int = 0
    status: AvailabilityStatus = "available"
    status_reason: str | None = None
    schedule: AgentSchedule | None = None


def evolve(state: Availability | None, event: DomainEvent) -> Availability | None:
    """Fold an Agent stream's event; agents start available with no schedule. Never raises."""
    if isinstance(event, AgentRegistered):
        return Availability(agent_id=event.originator_id, version=event.originator_version)
    if state is None:
        return None
    s = state.model_copy(update={"version": event.originator_version})
    match event:
        case AgentAvailabilitySet():
            return s.model_copy(update={"status": event.status, "status_reason": event.reason})
        case AgentScheduleSet():
            return s.model_copy(update={"schedule": event.schedule})
    return s


def available_at(availability: Availability, at: datetime) -> tuple[bool, str]:
    """Whether the agent takes routed tickets at ``at``, and why (a short explanation)."""
    if availability.status != "available":
        # Not the status's reason: it is the agent's personal data, sealed in its event,
        # and this explanation is recorded in clear with routing decisions.
        return False, f"status {availability.status}"
    schedule = availability.schedule
    if schedule is None:
        return True, "available (no schedule)"
    for window in schedule.on_call:
        if window.start <= at < window.end:
            return True, f"on call until {window.end.isoformat()}"
    if schedule.hours is not None and schedule.hours.is_business_time(at):
        return True, f"on shift ({schedule.hours.name}, {schedule.hours.timezone})"
    return False, "off shift"


def set_status(
    availability: Availability,
    agent: Agent,
    meta: CommandMeta,
    status: AvailabilityStatus,
    reason: str | None,
) -> list[DomainEvent]:
    if not agent.active:
        raise RuleViolationError(f"agent {agent.name} is deactivated")
    if status == availability.status and reason == availability.status_reason:
        raise RuleViolationError(f"agent {agent.name} is already {status}")
    return [
        EventFactory(meta).make(
            AgentAvailabilitySet,
            agent.id,
            agent.version + 1,
            status=status,
            reason=reason,
            subject_id=agent_principal(agent.id),
        )
    ]


def set_schedule(
    availability: Availability,
    agent: Agent,
    meta: CommandMeta,
    schedule: AgentSchedule,
    reason: str | None,
) -> list[DomainEvent]:
    if schedule == availability.schedule:
        raise RuleViolationError(f"the schedule of agent {agent.name} is unchanged")
    return [
        EventFactory(meta).make(
            AgentScheduleSet,
            agent.id,
            agent.version + 1,
            schedule=schedule,
            reason=reason,
            subject_id=agent_principal(agent.id),
        )
    ]


KIND = Kind("Agent", evolve)
"""An agent's availability, folded from the agent's own stream."""
