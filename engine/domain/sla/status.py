"""What a person (and the queue view) sees of a ticket's SLA: ``view(clock, now)`` as of an
instant, and ``facts(clock)``, what the log alone says (no ``now``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from engine.domain.base import DomainEvent
from engine.domain.priority import Priority
from engine.domain.sla.clock import Phase, SlaClock, elapsed, fold
from engine.domain.sla.common import TARGETS, SlaTarget

TargetStatus = Literal["running", "paused", "at_risk", "breached", "met", "met_late", "stopped"]
ClockStatus = Literal["on_track", "paused", "at_risk", "breached", "met", "stopped"]


class TargetView(BaseModel):
    # Durations go out as seconds (a number), unambiguous for every client.
    model_config = ConfigDict(frozen=True, ser_json_timedelta="float")

    target: SlaTarget
    duration: timedelta
    due_at: datetime | None
    at_risk_at: datetime | None
    elapsed: timedelta
    remaining: timedelta = Field(description="target minus elapsed; negative when late")
    status: TargetStatus
    met_at: datetime | None
    at_risk_recorded: bool
    breach_recorded: bool


class SlaView(BaseModel):
    """A ticket's SLA at an instant: pure, from the clock's events and ``now``."""

    model_config = ConfigDict(frozen=True)

    ticket_id: UUID
    priority: Priority
    policy_version: int
    calendar: str
    calendar_version: int
    term: int
    phase: Phase
    started_at: datetime
    status: ClockStatus
    breached: bool = Field(description="a target not yet met is past its due time")
    next_due_at: datetime | None = Field(description="the earliest due time of a running target")
    first_response: TargetView
    resolution: TargetView
    as_of: datetime


def _target_view(clock: SlaClock, name: SlaTarget, now: datetime) -> TargetView:
    t = clock.target(name)
    used = elapsed(clock, name, now)
    status: TargetStatus
    if t.met:
        status = "met" if t.within_target else "met_late"
    elif clock.phase == "stopped":
        status = "stopped"
    elif t.breached or (t.due_at is not None and t.due_at < now) or used > t.duration:
        status = "breached"
    elif t.at_risk or (t.at_risk_at is not None and t.at_risk_at <= now):
        status = "at_risk"
    elif clock.phase != "running":
        status = "paused"
    else:
        status = "running"
    return TargetView(
        target=name,
        duration=t.duration,
        due_at=t.due_at,
        at_risk_at=t.at_risk_at,
        elapsed=used,
        remaining=t.duration - used,
        status=status,
        met_at=t.met_at,
        at_risk_recorded=t.at_risk,
        breach_recorded=t.breached,
    )


def _clock_status(clock: SlaClock, has_open: bool, breached: bool, at_risk: bool) -> ClockStatus:
    """The clock's status from its phase and what its open targets are (``has_open``: a
    target is not met yet)."""
    if clock.phase == "stopped":
        return "stopped"
    if not has_open:
        return "met"
    if breached:
        return "breached"
    if at_risk:
        return "at_risk"
    return "on_track" if clock.phase == "running" else "paused"


def view(clock: SlaClock, now: datetime) -> SlaView:
    """The clock as of ``now``. Past due counts as breached even before the clock process
    records it; ``breach_recorded`` and ``at_risk_recorded`` show what the log says."""
    targets = {name: _target_view(clock, name, now) for name in TARGETS}
    open_targets = [v for v in targets.values() if v.status not in ("met", "met_late")]
    status = _clock_status(
        clock,
        bool(open_targets),
        breached=any(v.status == "breached" for v in open_targets),
        at_risk=any(v.status == "at_risk" for v in open_targets),
    )
    dues = [v.due_at for v in open_targets if v.due_at is not None]
    return SlaView(
        ticket_id=clock.ticket_id,
        priority=clock.priority,
        policy_version=clock.policy_version,
        calendar=clock.calendar.name,
        calendar_version=clock.calendar_version,
        term=clock.term,
        phase=clock.phase,
        started_at=clock.started_at,
        status=status,
        breached=status == "breached",
        next_due_at=min(dues, default=None) if clock.phase == "running" else None,
        first_response=targets["first_response"],
        resolution=targets["resolution"],
        as_of=now,
    )


def sla_state(events: Iterable[DomainEvent], now: datetime) -> SlaView | None:
    """A ticket's SLA from its clock's events and ``now`` (None before the clock starts)."""
    clock = fold(events)
    return view(clock, now) if clock is not None else None


class SlaFacts(BaseModel):
    """What the log says of a ticket's SLA, without reading any clock: what a view stores.

    ``status`` is ``breached`` (a breach of a target not yet met is recorded), ``at_risk``,
    ``paused``, ``on_track``, ``met`` or ``stopped``; ``due_at`` is the earliest due time of
    a running target (None while paused, met or stopped): the queue orders by
    ``breached`` first, then ``due_at``, then priority.
    """

    model_config = ConfigDict(frozen=True)

    status: ClockStatus
    breached: bool
    at_risk: bool
    due_at: datetime | None
    first_response_due_at: datetime | None
    resolution_due_at: datetime | None
    priority: Priority
    policy_version: int


def facts(clock: SlaClock) -> SlaFacts:
    """The clock's recorded facts (pure, no ``now``): what a projection folds per ticket."""
    open_targets = [clock.target(name) for name in TARGETS if not clock.target(name).met]
    breached = any(t.breached for t in open_targets)
    at_risk = any(t.at_risk for t in open_targets)
    status = _clock_status(clock, bool(open_targets), breached=breached, at_risk=at_risk)
    dues = [t.due_at for t in open_targets if t.due_at is not None]
    running = clock.phase == "running"
    return SlaFacts(
        status=status,
        breached=breached and status == "breached",
        at_risk=at_risk and status in ("breached", "at_risk"),
        due_at=min(dues, default=None) if running else None,
        first_response_due_at=clock.first_response.due_at if running else None,
        resolution_due_at=clock.resolution.due_at if running else None,
        priority=clock.priority,
        policy_version=clock.policy_version,
    )
