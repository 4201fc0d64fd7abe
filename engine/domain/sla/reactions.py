"""The SLA clock's commands, the terms a clock runs under, and ``clock_command_for``: which
ticket event makes which clock command (the one rule the clock process and the simulation
both follow)."""

# Rules of the clock (see docs/sla.md for the reasoning):
#
# - It starts when the ticket is first triaged (the same append that opens it), measured
#   from the ticket's opening; first response and resolution are two targets on one clock.
# - Pending pauses both targets; resuming recomputes the due times with the pause excluded.
# - A public reply by anyone but the requester, or work started, is the first response; a
#   resolution is also a first response if none came before.
# - Resolution meets the resolution target (``SlaMet``, ``within_target`` tells whether on
#   time). A reopening resumes the same clock: the time the ticket spent resolved counts as
#   a pause, so the resolution target keeps what had elapsed before.
# - A re-triage to another priority starts a new *term*: new targets under the policy and
#   calendar in force then, measured retroactively from the ticket's opening with the same
#   pauses. Met targets stay met; at-risk and breach are per term (a downgrade can clear
#   them, an upgrade can make them fall due at once; the old term's events stay in the
#   history).
# - At-risk (a share of the target used, default 75%) and breach (business time past the
#   due time) are recorded at most once per target and term.

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict

from engine.domain import ticket as tk
from engine.domain.base import DomainEvent
from engine.domain.calendar import BusinessCalendar
from engine.domain.priority import Priority
from engine.domain.sla.calendars import CalendarVersion
from engine.domain.sla.clock import SlaClock
from engine.domain.sla.common import Share
from engine.domain.sla.policy import SlaPolicy


class ClockTerms(BaseModel):
    """The terms a clock runs under, resolved from the policy and calendar in force."""

    model_config = ConfigDict(frozen=True)

    priority: Priority
    policy_version: int
    calendar: BusinessCalendar
    calendar_version: int
    first_response: timedelta
    resolution: timedelta
    at_risk_share: Share


def terms_for(policy: SlaPolicy, calendar: CalendarVersion, priority: Priority) -> ClockTerms:
    targets = policy.targets[priority]
    return ClockTerms(
        priority=priority,
        policy_version=policy.version,
        calendar=calendar.calendar,
        calendar_version=calendar.version,
        first_response=targets.first_response,
        resolution=targets.resolution,
        at_risk_share=policy.at_risk_share,
    )


class StartClock(BaseModel):
    """The ticket was triaged (``opened_at`` is when it was opened)."""

    model_config = ConfigDict(frozen=True)
    ticket_id: UUID
    source_version: int
    opened_at: AwareDatetime
    terms: ClockTerms


class PauseClock(BaseModel):
    model_config = ConfigDict(frozen=True)
    source_version: int
    at: AwareDatetime
    reason: str = "pending"


class ResumeClock(BaseModel):
    model_config = ConfigDict(frozen=True)
    source_version: int
    at: AwareDatetime
    reason: Literal["resumed", "reopened"] = "resumed"


class RecordFirstResponse(BaseModel):
    model_config = ConfigDict(frozen=True)
    source_version: int
    at: AwareDatetime


class RecordResolution(BaseModel):
    model_config = ConfigDict(frozen=True)
    source_version: int
    at: AwareDatetime


class StopClock(BaseModel):
    model_config = ConfigDict(frozen=True)
    source_version: int
    at: AwareDatetime
    reason: str


class RecordDue(BaseModel):
    """Record at-risk and breach events that fell due before ``until``; nothing if ``until``
    is before the clock's last change."""

    model_config = ConfigDict(frozen=True)
    until: AwareDatetime


ClockCommand = (
    StartClock
    | PauseClock
    | ResumeClock
    | RecordFirstResponse
    | RecordResolution
    | StopClock
    | RecordDue
)


def clock_command_for(
    event: DomainEvent,
    clock: SlaClock | None,
    terms: Callable[[Priority], ClockTerms],
    opened_at: Callable[[], datetime],
) -> ClockCommand | None:
    """The clock command a ticket event makes, if any, given the ticket's clock.

    ``terms`` gives the terms in force for a priority at the event's time and ``opened_at``
    when the ticket was opened; both are called only when a triage starts a new term.
    """
    v, at = event.originator_version, event.occurred_at
    match event:
        case tk.TicketTriaged():
            if clock is not None and (
                clock.priority == event.priority or v <= clock.ticket_version
            ):
                return None
            return StartClock(
                ticket_id=event.originator_id,
                source_version=v,
                opened_at=opened_at(),
                terms=terms(event.priority),
            )
        case tk.TicketCommented():
            if event.visibility == "public" and event.author_role != "requester":
                return RecordFirstResponse(source_version=v, at=at)
        case tk.TicketWorkStarted():
            return RecordFirstResponse(source_version=v, at=at)
        case tk.TicketPended():
            return PauseClock(source_version=v, at=at, reason=f"waiting on {event.waiting_on}")
        case tk.TicketResumed():
            return ResumeClock(source_version=v, at=at, reason="resumed")
        case tk.TicketResolved():
            return RecordResolution(source_version=v, at=at)
        case tk.TicketReopened():
            return ResumeClock(source_version=v, at=at, reason="reopened")
        case tk.TicketCancelled():
            return StopClock(source_version=v, at=at, reason="cancelled")
        case tk.TicketMerged():
            return StopClock(source_version=v, at=at, reason="merged")
    return None
