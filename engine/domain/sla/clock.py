"""The per-ticket SLA clock: its events and its state as folded from them (``evolve``
copies the due times the events carry, so it never consults a calendar and never fails)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from engine.domain.base import DomainEvent, Kind, derived_id
from engine.domain.calendar import BusinessCalendar, Pause
from engine.domain.priority import Priority
from engine.domain.sla.common import TARGETS, Share, SlaTarget

Phase = Literal["running", "paused", "resolved", "stopped"]


def clock_id(ticket_id: UUID) -> UUID:
    return derived_id("sla-clock", str(ticket_id))


# --- events ---------------------------------------------------------------------------


class SlaClockEvent(DomainEvent):
    aggregate_type = "SlaClock"
    ticket_id: UUID


class Deadlines(BaseModel):
    """Due and at-risk instants of both targets; None while paused or once met."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    first_response_due_at: AwareDatetime | None = None
    first_response_at_risk_at: AwareDatetime | None = None
    resolution_due_at: AwareDatetime | None = None
    resolution_at_risk_at: AwareDatetime | None = None

    def of(self, target: SlaTarget) -> dict[str, datetime | None]:
        """The target's due and at-risk instants, as ``TargetClock`` fields."""
        return {
            "due_at": getattr(self, f"{target}_due_at"),
            "at_risk_at": getattr(self, f"{target}_at_risk_at"),
        }


class SlaClockStarted(SlaClockEvent):
    """The ticket's SLA clock started (term 1) or was re-targeted by a re-triage."""

    type_name = "SlaClockStarted"
    term: int = Field(ge=1)
    reason: Literal["opened", "retriaged"]
    source_version: int
    priority: Priority
    policy_version: int
    calendar: BusinessCalendar
    calendar_version: int
    first_response_target: timedelta
    resolution_target: timedelta
    at_risk_share: Share
    started_at: AwareDatetime
    deadlines: Deadlines


class SlaClockPaused(SlaClockEvent):
    """The ticket went pending: both targets stop counting."""

    type_name = "SlaClockPaused"
    source_version: int
    paused_at: AwareDatetime
    reason: str


class SlaClockResumed(SlaClockEvent):
    """The clock runs again (resumed, or reopened after resolution) with new due times."""

    type_name = "SlaClockResumed"
    source_version: int
    resumed_at: AwareDatetime
    reason: Literal["resumed", "reopened"]
    deadlines: Deadlines


class FirstResponseMet(SlaClockEvent):
    """The first response happened; ``within_target`` tells whether on time."""

    type_name = "FirstResponseMet"
    source_version: int
    responded_at: AwareDatetime
    elapsed: timedelta
    within_target: bool


class SlaAtRisk(SlaClockEvent):
    """A target has used its at-risk share of business time (once per target and term)."""

    type_name = "SlaAtRisk"
    target: SlaTarget
    term: int
    priority: Priority
    at_risk_at: AwareDatetime
    due_at: AwareDatetime
    share: Share


class SlaBreached(SlaClockEvent):
    """A target's due time passed before it was met (once per target and term)."""

    type_name = "SlaBreached"
    target: SlaTarget
    term: int
    priority: Priority
    due_at: AwareDatetime


class SlaMet(SlaClockEvent):
    """The ticket was resolved: the resolution target's clock stops."""

    type_name = "SlaMet"
    source_version: int
    resolved_at: AwareDatetime
    elapsed: timedelta
    within_target: bool


class SlaClockStopped(SlaClockEvent):
    """The ticket ended without resolution (cancelled, merged): the clock stops for good."""

    type_name = "SlaClockStopped"
    source_version: int
    stopped_at: AwareDatetime
    reason: str


# --- state ----------------------------------------------------------------------------


class TargetClock(BaseModel):
    """One target of a clock."""

    model_config = ConfigDict(frozen=True)

    duration: timedelta
    due_at: datetime | None = None
    at_risk_at: datetime | None = None
    at_risk: bool = False
    breached: bool = False
    met_at: datetime | None = None
    within_target: bool | None = None

    @property
    def met(self) -> bool:
        return self.met_at is not None


class SlaClock(BaseModel):
    """A ticket's SLA clock as folded from its events."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    ticket_id: UUID
    version: int
    ticket_version: int
    term: int
    priority: Priority
    policy_version: int
    calendar: BusinessCalendar
    calendar_version: int
    at_risk_share: float
    started_at: datetime
    updated_at: datetime = Field(description="when the clock last changed (its last event)")
    phase: Phase = "running"
    paused_since: datetime | None = None
    pauses: tuple[tuple[datetime, datetime], ...] = ()
    first_response: TargetClock
    resolution: TargetClock
    stop_reason: str | None = None

    def target(self, name: SlaTarget) -> TargetClock:
        return self.first_response if name == "first_response" else self.resolution

    def stops(self) -> list[Pause]:
        """Every pause, the open one (if any) as open-ended."""
        open_pause: list[Pause] = [(self.paused_since, None)] if self.paused_since else []
        return [*self.pauses, *open_pause]


def _with_deadlines(clock: SlaClock, deadlines: Deadlines) -> dict[str, TargetClock]:
    updated: dict[str, TargetClock] = {}
    for name in TARGETS:
        t = clock.target(name)
        if not t.met:
            updated[name] = t.model_copy(update=deadlines.of(name))
    return updated


def evolve(state: SlaClock | None, event: DomainEvent) -> SlaClock | None:
    """Fold one event into the clock. Total: never raises, whatever the history."""
    if isinstance(event, SlaClockStarted):
        return _started(state, event)
    if state is None:
        return None  # Only a start makes a clock; anything before it is ignored.
    s = state.model_copy(
        update={
            "version": event.originator_version,
            "updated_at": max(state.updated_at, event.occurred_at),
        }
    )
    source = getattr(event, "source_version", None)
    if isinstance(source, int):
        s = s.model_copy(update={"ticket_version": max(s.ticket_version, source)})
    match event:
        case SlaClockPaused():
            if s.phase != "running":
                return s
            cleared: dict[str, TargetClock] = {
                name: s.target(name).model_copy(update={"due_at": None, "at_risk_at": None})
                for name in TARGETS
                if not s.target(name).met
            }
            return s.model_copy(
                update={"phase": "paused", "paused_since": event.paused_at, **cleared}
            )
        case SlaClockResumed():
            if s.phase not in ("paused", "resolved"):
                return s
            pauses = s.pauses
            if s.paused_since is not None and s.paused_since <= event.resumed_at:
                pauses = (*pauses, (s.paused_since, event.resumed_at))
            s = s.model_copy(update={"phase": "running", "paused_since": None, "pauses": pauses})
            if event.reason == "reopened":
                reopened = s.resolution.model_copy(update={"met_at": None, "within_target": None})
                s = s.model_copy(update={"resolution": reopened})
            return s.model_copy(update=_with_deadlines(s, event.deadlines))
        case FirstResponseMet():
            if s.first_response.met:
                return s
            met = s.first_response.model_copy(
                update={"met_at": event.responded_at, "within_target": event.within_target}
            )
            return s.model_copy(update={"first_response": met})
        case SlaAtRisk():
            if event.term != s.term:
                return s
            return s.model_copy(
                update={event.target: s.target(event.target).model_copy(update={"at_risk": True})}
            )
        case SlaBreached():
            if event.term != s.term:
                return s
            return s.model_copy(
                update={event.target: s.target(event.target).model_copy(update={"breached": True})}
            )
        case SlaMet():
            if s.phase in ("resolved", "stopped"):
                return s
            met = s.resolution.model_copy(
                update={"met_at": event.resolved_at, "within_target": event.within_target}
            )
            return s.model_copy(
                update={
                    "resolution": met,
                    "phase": "resolved",
                    "paused_since": s.paused_since or event.resolved_at,
                }
            )
        case SlaClockStopped():
            return s.model_copy(update={"phase": "stopped", "stop_reason": event.reason})
    return s


def _started(state: SlaClock | None, event: SlaClockStarted) -> SlaClock:
    def fresh(duration: timedelta, name: SlaTarget) -> TargetClock:
        return TargetClock(duration=duration, **event.deadlines.of(name))

    terms = {
        "term": event.term,
        "priority": event.priority,
        "policy_version": event.policy_version,
        "calendar": event.calendar,
        "calendar_version": event.calendar_version,
        "at_risk_share": event.at_risk_share,
    }
    first = fresh(event.first_response_target, "first_response")
    resolution = fresh(event.resolution_target, "resolution")
    if state is None:
        return SlaClock(
            id=event.originator_id,
            ticket_id=event.ticket_id,
            version=event.originator_version,
            ticket_version=event.source_version,
            updated_at=event.occurred_at,
            started_at=event.started_at,
            first_response=first,
            resolution=resolution,
            **terms,
        )
    # A new term: met targets stay met, the others take the new terms with fresh flags.
    return state.model_copy(
        update={
            "version": event.originator_version,
            "ticket_version": max(state.ticket_version, event.source_version),
            "updated_at": max(state.updated_at, event.occurred_at),
            "first_response": state.first_response if state.first_response.met else first,
            "resolution": state.resolution if state.resolution.met else resolution,
            **terms,
        }
    )


def fold(events: Iterable[DomainEvent]) -> SlaClock | None:
    state: SlaClock | None = None
    for event in events:
        state = evolve(state, event)
    return state


def elapsed(clock: SlaClock, target: SlaTarget, at: datetime) -> timedelta:
    """Business time the target has used by ``at`` (up to its being met), pauses excluded."""
    t = clock.target(target)
    end = t.met_at if t.met_at is not None else at
    if end <= clock.started_at:
        return timedelta()
    return clock.calendar.business_time_between(clock.started_at, end, clock.stops())


KIND = Kind("SlaClock", evolve)
"""Keyed by the ticket's id (the clock's stream is ``clock_id(ticket_id)``)."""
