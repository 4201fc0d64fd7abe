"""Service levels: the SLA policy, business calendars, escalation rules, and the per-ticket
SLA clock as a Decider (commands in, events out, state folded from events).

Configuration is audited and versioned: each change is an event on its own aggregate, and the
aggregate's version *is* the configuration's version (version 0 is the built-in default).

The clock of a ticket records, when it starts, the terms it runs under: the policy version,
the calendar (its whole definition and version) and the targets. Due times are computed by
``decide`` (pure business-time arithmetic, pauses excluded) and recorded in the events, so
``evolve`` only copies them: a replay never consults a calendar, the ``holidays`` package or
the wall clock, and a later policy or calendar change never rewrites a past ticket's outcome.

Rules of the clock (see docs/sla.md for the reasoning):

- It starts when the ticket is first triaged (the same append that opens it), measured from
  the ticket's opening; first response and resolution are two targets on one clock.
- Pending pauses both targets; resuming recomputes the due times with the pause excluded.
- A public reply by anyone but the requester, or work started, is the first response; a
  resolution is also a first response if none came before.
- Resolution meets the resolution target (``SlaMet``, ``within_target`` tells whether on
  time). A reopening resumes the same clock: the time the ticket spent resolved counts as a
  pause, so the resolution target keeps what had elapsed before.
- A re-triage to another priority starts a new *term*: new targets under the policy and
  calendar in force then, measured retroactively from the ticket's opening with the same
  pauses. Met targets stay met; at-risk and breach are per term (a downgrade can clear them,
  an upgrade can make them fall due at once; the old term's events stay in the history).
- At-risk (a share of the target used, default 75%) and breach (business time past the due
  time) are recorded at most once per target and term.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from engine.domain.base import (
    CommandMeta,
    DomainEvent,
    EventFactory,
    RuleViolationError,
    derived_id,
)
from engine.domain.calendar import BusinessCalendar, Pause
from engine.domain.escalation import EscalationKind, TargetType
from engine.domain.priority import Priority

SlaTarget = Literal["first_response", "resolution"]
TARGETS: tuple[SlaTarget, ...] = ("first_response", "resolution")
Phase = Literal["running", "paused", "resolved", "stopped"]

BUSINESS_HOURS = "business-hours"
ALWAYS_ON = "24x7"
DEFAULT_AT_RISK_SHARE = 0.75
Share = Annotated[float, Field(gt=0, lt=1)]

POLICY_ID = derived_id("sla-policy", "default")


def calendar_id(name: str) -> UUID:
    return derived_id("sla-calendar", name)


def escalation_rules_id(queue: str) -> UUID:
    return derived_id("escalation-rules", queue)


def clock_id(ticket_id: UUID) -> UUID:
    return derived_id("sla-clock", str(ticket_id))


class SlaError(RuleViolationError):
    """An SLA configuration or clock command breaks a rule."""


# --- the policy -----------------------------------------------------------------------


class PriorityTargets(BaseModel):
    """One priority's targets, in business time on the named calendar."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    first_response: timedelta = Field(gt=timedelta(0))
    resolution: timedelta = Field(gt=timedelta(0))
    calendar: str = Field(default=BUSINESS_HOURS, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _response_before_resolution(self) -> PriorityTargets:
        if self.first_response > self.resolution:
            raise ValueError("the first-response target cannot exceed the resolution target")
        return self


def _every_priority(targets: dict[Priority, PriorityTargets]) -> dict[Priority, PriorityTargets]:
    missing = [p.value for p in Priority if p not in targets]
    if missing:
        raise ValueError(f"the policy needs targets for every priority; missing {missing}")
    return targets


class SlaPolicySet(DomainEvent):
    """The SLA policy changed: targets per priority and the at-risk share."""

    type_name = "SlaPolicySet"
    aggregate_type = "SlaPolicy"
    targets: dict[Priority, PriorityTargets]
    at_risk_share: Share
    reason: str | None = None


class SlaPolicy(BaseModel):
    """The policy in force; ``version`` 0 is the built-in default."""

    model_config = ConfigDict(frozen=True)

    version: int = 0
    targets: dict[Priority, PriorityTargets]
    at_risk_share: Share = DEFAULT_AT_RISK_SHARE


def _targets(first: int, resolution: int, calendar: str = BUSINESS_HOURS) -> PriorityTargets:
    return PriorityTargets(
        first_response=timedelta(minutes=first),
        resolution=timedelta(minutes=resolution),
        calendar=calendar,
    )


# P1 runs around the clock: a critical outage reported on Friday evening cannot wait for
# Monday. The others run in business hours. Every value is configurable (SlaPolicySet).
DEFAULT_POLICY = SlaPolicy(
    targets={
        Priority.P1: _targets(15, 4 * 60, ALWAYS_ON),
        Priority.P2: _targets(60, 8 * 60),
        Priority.P3: _targets(4 * 60, 24 * 60),
        Priority.P4: _targets(8 * 60, 40 * 60),
    }
)


def evolve_policy(state: SlaPolicy | None, event: DomainEvent) -> SlaPolicy:
    current = state or DEFAULT_POLICY
    if isinstance(event, SlaPolicySet):
        return SlaPolicy(
            version=event.originator_version,
            targets=event.targets,
            at_risk_share=event.at_risk_share,
        )
    return current.model_copy(update={"version": event.originator_version})


def set_policy(
    current: SlaPolicy,
    meta: CommandMeta,
    targets: dict[Priority, PriorityTargets],
    at_risk_share: float,
    known_calendars: Iterable[str],
    reason: str | None,
) -> list[DomainEvent]:
    try:
        _every_priority(targets)
    except ValueError as error:
        raise SlaError(str(error)) from None
    unknown = sorted({t.calendar for t in targets.values()} - set(known_calendars))
    if unknown:
        raise SlaError(f"unknown calendars {unknown}: define them first (POST /sla/calendars)")
    if targets == current.targets and at_risk_share == current.at_risk_share:
        raise SlaError("the policy is unchanged")
    return [
        EventFactory(meta).make(
            SlaPolicySet,
            POLICY_ID,
            current.version + 1,
            targets=targets,
            at_risk_share=at_risk_share,
            reason=reason,
        )
    ]


# --- calendars ------------------------------------------------------------------------


class SlaCalendarSet(DomainEvent):
    """A business calendar was defined or changed (working hours, time zone, holidays)."""

    type_name = "SlaCalendarSet"
    aggregate_type = "SlaCalendar"
    calendar: BusinessCalendar
    reason: str | None = None


class CalendarVersion(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: int
    calendar: BusinessCalendar


BUILTIN_CALENDARS: dict[str, BusinessCalendar] = {
    BUSINESS_HOURS: BusinessCalendar(name=BUSINESS_HOURS),  # Mon-Fri 09:00-17:00 UTC
    ALWAYS_ON: BusinessCalendar.always_on(ALWAYS_ON),
}


def builtin_calendar(name: str) -> CalendarVersion | None:
    calendar = BUILTIN_CALENDARS.get(name)
    return CalendarVersion(version=0, calendar=calendar) if calendar is not None else None


def evolve_calendar(state: CalendarVersion | None, event: DomainEvent) -> CalendarVersion | None:
    if isinstance(event, SlaCalendarSet):
        return CalendarVersion(version=event.originator_version, calendar=event.calendar)
    if state is None:
        return None
    return state.model_copy(update={"version": event.originator_version})


def set_calendar(
    current: CalendarVersion | None,
    meta: CommandMeta,
    calendar: BusinessCalendar,
    reason: str | None,
) -> list[DomainEvent]:
    if current is not None and current.calendar == calendar:
        raise SlaError(f"calendar {calendar.name!r} is unchanged")
    version = current.version + 1 if current is not None else 1
    return [
        EventFactory(meta).make(
            SlaCalendarSet, calendar_id(calendar.name), version, calendar=calendar, reason=reason
        )
    ]


# --- escalation rules -----------------------------------------------------------------


class EscalationStep(BaseModel):
    """Where an automatic escalation goes; a ``target`` of None means the queue's lead."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: EscalationKind = "hierarchical"
    target_type: TargetType = "manager"
    target: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _coherent(self) -> EscalationStep:
        if self.kind == "hierarchical" and self.target_type != "manager":
            raise ValueError("a hierarchical escalation targets a manager (target_type)")
        if self.kind == "functional" and self.target_type == "manager":
            raise ValueError("a functional escalation targets a queue, department or vendor")
        if self.kind == "functional" and not self.target:
            raise ValueError("a functional escalation names its target")
        return self


class EscalationRule(BaseModel):
    """What happens when a target of a ticket falls at risk, or is breached."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    on_at_risk: EscalationStep | None = EscalationStep()
    on_breach: EscalationStep | None = EscalationStep(target="service-desk-manager")
    targets: tuple[SlaTarget, ...] = TARGETS


class EscalationRules(BaseModel):
    """A queue's rules: a default and per-priority overrides; ``version`` 0 is built in."""

    model_config = ConfigDict(frozen=True)

    queue: str
    version: int = 0
    lead: str | None = None
    default: EscalationRule = EscalationRule()
    by_priority: dict[Priority, EscalationRule] = {}

    def rule(self, priority: Priority) -> EscalationRule:
        return self.by_priority.get(priority, self.default)


class EscalationRulesSet(DomainEvent):
    """A queue's automatic escalation rules changed."""

    type_name = "EscalationRulesSet"
    aggregate_type = "EscalationRules"
    queue: str
    lead: str | None = None
    default: EscalationRule
    by_priority: dict[Priority, EscalationRule] = {}
    reason: str | None = None


def evolve_escalation_rules(state: EscalationRules, event: DomainEvent) -> EscalationRules:
    if isinstance(event, EscalationRulesSet):
        return EscalationRules(
            queue=event.queue,
            version=event.originator_version,
            lead=event.lead,
            default=event.default,
            by_priority=event.by_priority,
        )
    return state.model_copy(update={"version": event.originator_version})


def set_escalation_rules(
    current: EscalationRules,
    meta: CommandMeta,
    lead: str | None,
    default: EscalationRule,
    by_priority: dict[Priority, EscalationRule],
    reason: str | None,
) -> list[DomainEvent]:
    if (lead, default, by_priority) == (current.lead, current.default, current.by_priority):
        raise SlaError(f"the escalation rules of queue {current.queue!r} are unchanged")
    return [
        EventFactory(meta).make(
            EscalationRulesSet,
            escalation_rules_id(current.queue),
            current.version + 1,
            queue=current.queue,
            lead=lead,
            default=default,
            by_priority=by_priority,
            reason=reason,
        )
    ]


class EscalationPlan(BaseModel):
    """An automatic escalation to raise for one SLA event."""

    model_config = ConfigDict(frozen=True)

    kind: EscalationKind
    target_type: TargetType
    target: str
    reason: str


def plan_escalation(
    event: SlaAtRisk | SlaBreached, rules: EscalationRules, queue_lead: str | None
) -> EscalationPlan | None:
    """The escalation a rule asks for on an at-risk or breach event, if any."""
    priority = event.priority
    rule = rules.rule(priority)
    if event.target not in rule.targets:
        return None
    step = rule.on_at_risk if isinstance(event, SlaAtRisk) else rule.on_breach
    if step is None:
        return None
    target = step.target or rules.lead or queue_lead or f"queue-lead:{rules.queue or 'none'}"
    what = "at risk" if isinstance(event, SlaAtRisk) else "breached"
    label = event.target.replace("_", " ")
    due = event.due_at.strftime("%Y-%m-%d %H:%M UTC")
    return EscalationPlan(
        kind=step.kind,
        target_type=step.target_type,
        target=target,
        reason=f"automatic: {priority.value} {label} target {what} (due {due})",
    )


# --- the clock: events ------------------------------------------------------------------


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


# --- the clock: state -------------------------------------------------------------------


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
            due = getattr(deadlines, f"{name}_due_at")
            risk = getattr(deadlines, f"{name}_at_risk_at")
            updated[name] = t.model_copy(update={"due_at": due, "at_risk_at": risk})
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
        return TargetClock(
            duration=duration,
            due_at=getattr(event.deadlines, f"{name}_due_at"),
            at_risk_at=getattr(event.deadlines, f"{name}_at_risk_at"),
        )

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


# --- the clock: commands and decisions --------------------------------------------------


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


def elapsed(clock: SlaClock, target: SlaTarget, at: datetime) -> timedelta:
    """Business time the target has used by ``at`` (up to its being met), pauses excluded."""
    t = clock.target(target)
    end = t.met_at if t.met_at is not None else at
    if end <= clock.started_at:
        return timedelta()
    return clock.calendar.business_time_between(clock.started_at, end, clock.stops())


def _deadlines(
    calendar: BusinessCalendar,
    started_at: datetime,
    pauses: Sequence[tuple[datetime, datetime]],
    share: float,
    durations: dict[SlaTarget, timedelta | None],
) -> Deadlines:
    """Due and at-risk instants of the targets still running (``None`` duration: met)."""
    fields: dict[str, datetime | None] = {}
    for name, duration in durations.items():
        if duration is None:
            continue
        fields[f"{name}_due_at"] = calendar.add_business_time(started_at, duration, pauses)
        fields[f"{name}_at_risk_at"] = calendar.add_business_time(
            started_at, duration * share, pauses
        )
    return Deadlines.model_validate(fields)


def decide(state: SlaClock | None, command: ClockCommand, meta: CommandMeta) -> list[DomainEvent]:
    """What the clock records for ``command``; an empty list when nothing changes.

    Ticket-driven commands whose ``source_version`` the clock has already seen record
    nothing, so reprocessing the log (after a crash, or by a second clock process) is safe.
    """
    if isinstance(command, StartClock):
        return _start(state, command, meta)
    if state is None or state.phase == "stopped":
        return []
    if isinstance(command, RecordDue):
        return _record_due(state, command, meta)
    if command.source_version <= state.ticket_version:
        return []
    make = EventFactory(meta)
    version = state.version + 1
    common = {"ticket_id": state.ticket_id, "source_version": command.source_version}
    match command:
        case PauseClock():
            if state.phase != "running":
                return []
            return [
                make.make(
                    SlaClockPaused,
                    state.id,
                    version,
                    paused_at=command.at,
                    reason=command.reason,
                    **common,
                )
            ]
        case ResumeClock():
            wanted = "resolved" if command.reason == "reopened" else "paused"
            if state.phase != wanted or state.paused_since is None:
                return []
            pauses = (*state.pauses, (state.paused_since, max(command.at, state.paused_since)))
            durations: dict[SlaTarget, timedelta | None] = {
                name: None
                if state.target(name).met and not (name == "resolution" and wanted == "resolved")
                else state.target(name).duration
                for name in TARGETS
            }
            deadlines = _deadlines(
                state.calendar, state.started_at, pauses, state.at_risk_share, durations
            )
            return [
                make.make(
                    SlaClockResumed,
                    state.id,
                    version,
                    resumed_at=command.at,
                    reason=command.reason,
                    deadlines=deadlines,
                    **common,
                )
            ]
        case RecordFirstResponse():
            if state.first_response.met or state.phase == "resolved":
                return []
            return [_first_response(state, make, version, command.at, command.source_version)]
        case RecordResolution():
            if state.phase == "resolved":
                return []
            events: list[DomainEvent] = []
            if not state.first_response.met:
                events.append(
                    _first_response(state, make, version, command.at, command.source_version)
                )
            used = elapsed(state, "resolution", command.at)
            events.append(
                make.make(
                    SlaMet,
                    state.id,
                    version + len(events),
                    resolved_at=command.at,
                    elapsed=used,
                    within_target=_within(state, "resolution", used),
                    **common,
                )
            )
            return events
        case StopClock():
            return [
                make.make(
                    SlaClockStopped,
                    state.id,
                    version,
                    stopped_at=command.at,
                    reason=command.reason,
                    **common,
                )
            ]
    return []


def _within(state: SlaClock, target: SlaTarget, used: timedelta) -> bool:
    t = state.target(target)
    return not t.breached and used <= t.duration


def _first_response(
    state: SlaClock, make: EventFactory, version: int, at: datetime, source_version: int
) -> DomainEvent:
    used = elapsed(state, "first_response", at)
    return make.make(
        FirstResponseMet,
        state.id,
        version,
        ticket_id=state.ticket_id,
        source_version=source_version,
        responded_at=at,
        elapsed=used,
        within_target=_within(state, "first_response", used),
    )


def _start(state: SlaClock | None, command: StartClock, meta: CommandMeta) -> list[DomainEvent]:
    terms = command.terms
    if state is not None and (
        command.source_version <= state.ticket_version
        or state.phase in ("resolved", "stopped")
        or terms.priority == state.priority
    ):
        return []
    started_at = state.started_at if state is not None else command.opened_at
    pauses = state.pauses if state is not None else ()
    durations: dict[SlaTarget, timedelta | None] = {
        "first_response": terms.first_response,
        "resolution": terms.resolution,
    }
    if state is not None:
        for name in TARGETS:
            if state.target(name).met:
                durations[name] = None
    deadlines = (
        Deadlines()
        if state is not None and state.phase == "paused"
        else _deadlines(terms.calendar, started_at, pauses, terms.at_risk_share, durations)
    )
    return [
        EventFactory(meta).make(
            SlaClockStarted,
            clock_id(command.ticket_id),
            state.version + 1 if state is not None else 1,
            ticket_id=command.ticket_id,
            term=state.term + 1 if state is not None else 1,
            reason="retriaged" if state is not None else "opened",
            source_version=command.source_version,
            priority=terms.priority,
            policy_version=terms.policy_version,
            calendar=terms.calendar,
            calendar_version=terms.calendar_version,
            first_response_target=terms.first_response,
            resolution_target=terms.resolution,
            at_risk_share=terms.at_risk_share,
            started_at=started_at,
            deadlines=deadlines,
        )
    ]


def _record_due(state: SlaClock, command: RecordDue, meta: CommandMeta) -> list[DomainEvent]:
    # Only the present terms are known: judging an instant before the clock last changed
    # (a reread of an old ticket event) could apply deadlines that were not yet in force.
    if state.phase != "running" or command.until < state.updated_at:
        return []
    due: list[tuple[datetime, int, SlaTarget, type[SlaAtRisk] | type[SlaBreached]]] = []
    for order, name in enumerate(TARGETS):
        t = state.target(name)
        if t.met or t.due_at is None or t.at_risk_at is None:
            continue
        if not t.at_risk and t.at_risk_at <= command.until:
            due.append((t.at_risk_at, order, name, SlaAtRisk))
        if not t.breached and t.due_at < command.until:
            due.append((t.due_at, order, name, SlaBreached))
    make = EventFactory(meta)
    events: list[DomainEvent] = []
    for _, _, name, kind in sorted(due, key=lambda d: (d[0], d[1], d[3] is SlaBreached)):
        t = state.target(name)
        assert t.due_at is not None and t.at_risk_at is not None
        common = {
            "ticket_id": state.ticket_id,
            "target": name,
            "term": state.term,
            "priority": state.priority,
        }
        version = state.version + 1 + len(events)
        if kind is SlaAtRisk:
            events.append(
                make.make(
                    SlaAtRisk,
                    state.id,
                    version,
                    at_risk_at=t.at_risk_at,
                    due_at=t.due_at,
                    share=state.at_risk_share,
                    **common,
                )
            )
        else:
            events.append(make.make(SlaBreached, state.id, version, due_at=t.due_at, **common))
    return events


def next_deadline(clock: SlaClock) -> datetime | None:
    """The next instant at which an at-risk or breach event falls due, if the clock runs."""
    if clock.phase != "running":
        return None
    instants: list[datetime] = []
    for name in TARGETS:
        t = clock.target(name)
        if t.met or t.due_at is None or t.at_risk_at is None:
            continue
        if not t.at_risk:
            instants.append(t.at_risk_at)
        if not t.breached:
            instants.append(t.due_at)
    return min(instants, default=None)


# --- what a person (and the queue view) sees ------------------------------------------

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


def view(clock: SlaClock, now: datetime) -> SlaView:
    """The clock as of ``now``. Past due counts as breached even before the clock process
    records it; ``breach_recorded`` and ``at_risk_recorded`` show what the log says."""
    targets = {name: _target_view(clock, name, now) for name in TARGETS}
    open_targets = [v for v in targets.values() if v.status not in ("met", "met_late")]
    status: ClockStatus
    if clock.phase == "stopped":
        status = "stopped"
    elif not open_targets:
        status = "met"
    elif any(v.status == "breached" for v in open_targets):
        status = "breached"
    elif any(v.status == "at_risk" for v in open_targets):
        status = "at_risk"
    elif clock.phase != "running":
        status = "paused"
    else:
        status = "on_track"
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
    status: ClockStatus
    if clock.phase == "stopped":
        status = "stopped"
    elif not open_targets:
        status = "met"
    elif breached:
        status = "breached"
    elif at_risk:
        status = "at_risk"
    elif clock.phase != "running":
        status = "paused"
    else:
        status = "on_track"
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
