"""The SLA clock decider: due times on calendars, pauses, first response, resolution,
reopen and re-triage rules, at-risk and breach exactly once, and the pure SLA view."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID, uuid5
from zoneinfo import ZoneInfo

import pytest
from givens import given, like

from engine.domain import sla
from engine.domain.base import CommandMeta, DomainEvent
from engine.domain.calendar import BusinessCalendar
from engine.domain.priority import Priority

TICKET = UUID("00000000-0000-4000-8000-000000000001")
CLOCK = sla.clock_id(TICKET)
NS = UUID("00000000-0000-4000-8000-0000000000aa")
LONDON = ZoneInfo("Europe/London")
MINUTE, HOUR = timedelta(minutes=1), timedelta(hours=1)
MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday without holidays nearby

ENGLAND = BusinessCalendar(
    name="london-office",
    timezone="Europe/London",
    holiday_country="GB",
    holiday_subdivision="ENG",
)


def meta(at: datetime) -> CommandMeta:
    return CommandMeta(
        actor="system:sla-clock", occurred_at=at, correlation_id=uuid5(NS, at.isoformat())
    )


def terms(
    priority: Priority = Priority.P2,
    calendar: BusinessCalendar | None = None,
    policy: sla.SlaPolicy = sla.DEFAULT_POLICY,
) -> sla.ClockTerms:
    name = policy.targets[priority].calendar
    version = sla.CalendarVersion(
        version=0 if calendar is None else 1,
        calendar=calendar or sla.BUILTIN_CALENDARS[name],
    )
    return sla.terms_for(policy, version, priority)


def start(
    at: datetime, priority: Priority = Priority.P2, calendar: BusinessCalendar | None = None
) -> sla.StartClock:
    return sla.StartClock(
        ticket_id=TICKET, source_version=2, opened_at=at, terms=terms(priority, calendar)
    )


def decide(
    command: sla.ClockCommand, at: datetime | None = None
) -> Callable[[Sequence[DomainEvent]], list[DomainEvent]]:
    """A decision on the clock folded from the history, as ``given().when()`` expects."""
    when = at or next(
        getattr(command, name) for name in ("at", "until", "opened_at") if hasattr(command, name)
    )

    def decision(history: Sequence[DomainEvent]) -> list[DomainEvent]:
        return sla.decide(sla.fold(history), command, meta(when))

    return decision


def run(*commands: sla.ClockCommand) -> list[DomainEvent]:
    """The history that deciding ``commands`` in turn records."""
    history: list[DomainEvent] = []
    for command in commands:
        history += decide(command)(history)
    return history


def clock_of(history: Sequence[DomainEvent]) -> sla.SlaClock:
    clock = sla.fold(history)
    assert clock is not None
    return clock


# --- due times on calendars ------------------------------------------------------------


def test_p1_runs_around_the_clock_by_default() -> None:
    friday = datetime(2026, 5, 22, 16, 55, tzinfo=UTC)
    given().when(decide(start(friday, Priority.P1))).then(
        like(
            sla.SlaClockStarted,
            originator_id=CLOCK,
            originator_version=1,
            term=1,
            priority=Priority.P1,
            policy_version=0,
            started_at=friday,
            first_response_target=15 * MINUTE,
            resolution_target=4 * HOUR,
            deadlines=sla.Deadlines(
                first_response_due_at=friday + 15 * MINUTE,
                first_response_at_risk_at=friday + timedelta(minutes=11.25),
                resolution_due_at=friday + 4 * HOUR,
                resolution_at_risk_at=friday + 3 * HOUR,
            ),
        )
    )


def test_a_p1_opened_friday_1655_before_a_bank_holiday_is_due_on_tuesday() -> None:
    # Friday 22 May 2026, 16:55 in London; Monday 25 May is the Spring Bank Holiday.
    friday = datetime(2026, 5, 22, 16, 55, tzinfo=LONDON)
    clock = clock_of(run(start(friday, Priority.P1, ENGLAND)))
    # Five minutes on Friday, none on the weekend or the holiday, the rest on Tuesday.
    assert clock.first_response.due_at == datetime(2026, 5, 26, 9, 10, tzinfo=LONDON)
    assert clock.resolution.due_at == datetime(2026, 5, 26, 12, 55, tzinfo=LONDON)
    assert clock.resolution.at_risk_at == datetime(2026, 5, 26, 11, 55, tzinfo=LONDON)
    assert clock.calendar == ENGLAND and clock.calendar_version == 1


def test_a_ticket_opened_out_of_hours_starts_counting_at_the_next_working_period() -> None:
    saturday = datetime(2026, 3, 7, 10, 0, tzinfo=UTC)
    clock = clock_of(run(start(saturday, Priority.P3)))  # 4 h / 24 h, business hours
    assert clock.first_response.due_at == datetime(2026, 3, 9, 13, 0, tzinfo=UTC)
    # 24 business hours = three 8-hour days: Monday, Tuesday, Wednesday.
    assert clock.resolution.due_at == datetime(2026, 3, 11, 17, 0, tzinfo=UTC)


# --- pauses ----------------------------------------------------------------------------------


def test_pending_time_is_not_counted() -> None:
    history = run(
        start(MONDAY),  # P2: 1 h first response, 8 h resolution, business hours
        sla.RecordFirstResponse(source_version=3, at=MONDAY + 10 * MINUTE),
        sla.PauseClock(source_version=4, at=MONDAY + HOUR),  # Monday 10:00
    )
    paused = clock_of(history)
    assert paused.phase == "paused" and paused.resolution.due_at is None
    # Resumed Tuesday 10:00: a working day and a night later, one hour had elapsed.
    tuesday = MONDAY + timedelta(days=1, hours=1)
    history += decide(sla.ResumeClock(source_version=5, at=tuesday))(history)
    resumed = clock_of(history)
    assert resumed.pauses == ((MONDAY + HOUR, tuesday),)
    assert resumed.resolution.due_at == tuesday + 7 * HOUR  # not Monday 17:00
    assert resumed.first_response.met_at == MONDAY + 10 * MINUTE
    assert sla.elapsed(resumed, "resolution", tuesday + 30 * MINUTE) == 90 * MINUTE
    view = sla.view(resumed, tuesday + 30 * MINUTE)
    assert view.resolution.remaining == 8 * HOUR - 90 * MINUTE
    assert view.status == "on_track" and view.first_response.status == "met"


def test_a_paused_clock_falls_due_for_nothing() -> None:
    history = run(start(MONDAY), sla.PauseClock(source_version=3, at=MONDAY + 5 * MINUTE))
    given(history).when(decide(sla.RecordDue(until=MONDAY + timedelta(days=30)))).then()
    view = sla.view(clock_of(history), MONDAY + timedelta(days=30))
    assert view.status == "paused" and view.next_due_at is None
    assert view.first_response.elapsed == 5 * MINUTE


# --- at risk and breach -------------------------------------------------------------------


def test_at_risk_and_breach_fall_due_once_each_in_order() -> None:
    history = run(start(MONDAY))
    late = MONDAY + 2 * HOUR  # first response (1 h) is late, resolution (8 h) is not at risk
    events = (
        given(history)
        .when(decide(sla.RecordDue(until=late)))
        .then(
            like(
                sla.SlaAtRisk,
                target="first_response",
                term=1,
                at_risk_at=MONDAY + 45 * MINUTE,
                due_at=MONDAY + HOUR,
                share=0.75,
            ),
            like(sla.SlaBreached, target="first_response", term=1, due_at=MONDAY + HOUR),
        )
    )
    assert [e.originator_version for e in events] == [2, 3]
    # Asked again, later: nothing new for the first response.
    given(history, events).when(decide(sla.RecordDue(until=late + MINUTE))).then()
    assert sla.next_deadline(clock_of(history + events)) == MONDAY + 6 * HOUR  # 75% of 8 h


def test_breach_is_strictly_after_the_due_time() -> None:
    history = run(start(MONDAY), sla.RecordDue(until=MONDAY + 45 * MINUTE))
    assert clock_of(history).first_response.at_risk
    given(history).when(decide(sla.RecordDue(until=MONDAY + HOUR))).then()


def test_a_met_target_never_falls_due() -> None:
    history = run(start(MONDAY), sla.RecordFirstResponse(source_version=3, at=MONDAY + MINUTE))
    given(history).when(decide(sla.RecordDue(until=MONDAY + 2 * HOUR))).then()


# --- first response, resolution, reopen, stop --------------------------------------------------


def test_a_late_first_response_is_met_but_not_within_target() -> None:
    history = run(start(MONDAY), sla.RecordDue(until=MONDAY + 2 * HOUR))
    given(history).when(
        decide(sla.RecordFirstResponse(source_version=3, at=MONDAY + 2 * HOUR))
    ).then(like(sla.FirstResponseMet, elapsed=2 * HOUR, within_target=False))


def test_resolution_meets_the_first_response_too_if_none_came() -> None:
    at = MONDAY + 30 * MINUTE
    given(run(start(MONDAY))).when(decide(sla.RecordResolution(source_version=3, at=at))).then(
        like(sla.FirstResponseMet, elapsed=30 * MINUTE, within_target=True),
        like(sla.SlaMet, resolved_at=at, elapsed=30 * MINUTE, within_target=True),
    )


def test_a_reopened_ticket_resumes_its_resolution_clock_without_the_resolved_time() -> None:
    resolved_at, reopened_at = MONDAY + 2 * HOUR, MONDAY + timedelta(days=1)  # Tuesday 09:00
    history = run(
        start(MONDAY),
        sla.RecordFirstResponse(source_version=3, at=MONDAY + MINUTE),
        sla.RecordResolution(source_version=4, at=resolved_at),
    )
    assert clock_of(history).phase == "resolved"
    given(history).when(
        decide(sla.ResumeClock(source_version=5, at=reopened_at, reason="reopened"))
    ).then(
        like(
            sla.SlaClockResumed,
            reason="reopened",
            deadlines=sla.Deadlines(
                resolution_due_at=reopened_at + 6 * HOUR,
                resolution_at_risk_at=reopened_at + 4 * HOUR,
            ),
        )
    )
    history += decide(sla.ResumeClock(source_version=5, at=reopened_at, reason="reopened"))(history)
    clock = clock_of(history)
    assert clock.resolution.met_at is None and clock.first_response.met
    assert sla.elapsed(clock, "resolution", reopened_at + HOUR) == 3 * HOUR


def test_a_cancelled_ticket_stops_its_clock_for_good() -> None:
    history = run(start(MONDAY), sla.StopClock(source_version=3, at=MONDAY + MINUTE, reason="x"))
    assert clock_of(history).phase == "stopped"
    given(history).when(decide(sla.RecordDue(until=MONDAY + timedelta(days=9)))).then()
    given(history).when(decide(sla.ResumeClock(source_version=4, at=MONDAY + HOUR))).then()
    assert sla.view(clock_of(history), MONDAY + HOUR).status == "stopped"


def test_a_ticket_event_already_reflected_records_nothing() -> None:
    history = run(start(MONDAY), sla.PauseClock(source_version=5, at=MONDAY + MINUTE))
    history += decide(sla.ResumeClock(source_version=6, at=MONDAY + HOUR))(history)
    # Reprocessing the pause (ticket version 5) after the resume changes nothing.
    given(history).when(decide(sla.PauseClock(source_version=5, at=MONDAY + MINUTE))).then()
    given(history).when(decide(start(MONDAY))).then()


# --- re-triage ------------------------------------------------------------------------------


def test_a_retriage_to_another_priority_retargets_from_the_opening() -> None:
    history = run(
        start(MONDAY, Priority.P4),  # 8 h / 40 h
        sla.RecordFirstResponse(source_version=3, at=MONDAY + HOUR),
    )
    upgrade = sla.StartClock(
        ticket_id=TICKET,
        source_version=4,
        opened_at=MONDAY + 2 * HOUR,
        terms=terms(Priority.P2),  # 1 h / 8 h
    )
    given(history).when(decide(upgrade, MONDAY + 2 * HOUR)).then(
        like(
            sla.SlaClockStarted,
            term=2,
            reason="retriaged",
            priority=Priority.P2,
            started_at=MONDAY,
            deadlines=sla.Deadlines(
                resolution_due_at=MONDAY + 8 * HOUR,
                resolution_at_risk_at=MONDAY + 6 * HOUR,
            ),
        )
    )
    history += decide(upgrade, MONDAY + 2 * HOUR)(history)
    clock = clock_of(history)
    assert clock.first_response.met_at == MONDAY + HOUR  # met under the old terms, stays met
    assert clock.resolution.duration == 8 * HOUR and clock.term == 2


def test_a_retriage_to_the_same_priority_changes_nothing() -> None:
    same = sla.StartClock(
        ticket_id=TICKET, source_version=3, opened_at=MONDAY, terms=terms(Priority.P2)
    )
    given(run(start(MONDAY))).when(decide(same, MONDAY + HOUR)).then()


def test_at_risk_and_breach_are_per_term() -> None:
    history = run(start(MONDAY, Priority.P2), sla.RecordDue(until=MONDAY + 2 * HOUR))
    assert clock_of(history).first_response.breached
    downgrade = sla.StartClock(
        ticket_id=TICKET, source_version=3, opened_at=MONDAY, terms=terms(Priority.P4)
    )
    history += decide(downgrade, MONDAY + 2 * HOUR)(history)
    clock = clock_of(history)
    assert not clock.first_response.breached and clock.first_response.duration == 8 * HOUR
    # A late event of the old term does not touch the new term's flags.
    stale = sla.SlaBreached(
        originator_id=CLOCK,
        originator_version=clock.version + 1,
        event_id=NS,
        occurred_at=MONDAY + 3 * HOUR,
        actor="x",
        correlation_id=NS,
        ticket_id=TICKET,
        target="resolution",
        term=1,
        due_at=MONDAY,
        priority=Priority.P2,
    )
    assert not clock_of([*history, stale]).resolution.breached


# --- the view --------------------------------------------------------------------------------


def test_the_view_shows_a_breach_before_the_clock_process_records_it() -> None:
    clock = clock_of(run(start(MONDAY)))
    view = sla.view(clock, MONDAY + 90 * MINUTE)
    assert view.status == "breached" and view.breached
    assert view.first_response.status == "breached" and not view.first_response.breach_recorded
    assert view.first_response.remaining == -30 * MINUTE
    assert view.next_due_at == MONDAY + HOUR
    assert sla.sla_state([], MONDAY) is None


def test_the_view_of_a_met_clock() -> None:
    history = run(start(MONDAY), sla.RecordResolution(source_version=3, at=MONDAY + HOUR))
    view = sla.view(clock_of(history), MONDAY + timedelta(days=3))
    assert view.status == "met" and view.next_due_at is None
    assert view.resolution.elapsed == HOUR and view.resolution.status == "met"


# --- configuration ------------------------------------------------------------------------------


def test_the_default_policy_has_every_priority() -> None:
    assert set(sla.DEFAULT_POLICY.targets) == set(Priority)
    p4 = sla.DEFAULT_POLICY.targets[Priority.P4]
    assert (p4.first_response, p4.resolution, p4.calendar) == (
        8 * HOUR,
        40 * HOUR,
        "business-hours",
    )


def test_a_policy_names_known_calendars_and_changes_something() -> None:
    targets = dict(sla.DEFAULT_POLICY.targets)
    targets[Priority.P1] = sla.PriorityTargets(
        first_response=10 * MINUTE, resolution=2 * HOUR, calendar="ops"
    )
    with pytest.raises(sla.SlaError, match="unknown calendars"):
        sla.set_policy(sla.DEFAULT_POLICY, meta(MONDAY), targets, 0.8, ["24x7"], None)
    with pytest.raises(sla.SlaError, match="unchanged"):
        sla.set_policy(
            sla.DEFAULT_POLICY,
            meta(MONDAY),
            sla.DEFAULT_POLICY.targets,
            0.75,
            sla.BUILTIN_CALENDARS,
            None,
        )
    events = sla.set_policy(
        sla.DEFAULT_POLICY, meta(MONDAY), targets, 0.8, [*sla.BUILTIN_CALENDARS, "ops"], "faster"
    )
    policy = sla.evolve_policy(None, events[0])
    assert policy.version == 1 and policy.at_risk_share == 0.8
    assert policy.targets[Priority.P1].calendar == "ops"


def test_a_calendar_is_versioned() -> None:
    first = sla.set_calendar(None, meta(MONDAY), ENGLAND, None)
    v1 = sla.evolve_calendar(None, first[0])
    assert v1 is not None and v1.version == 1
    with_holiday = ENGLAND.model_copy(update={"holidays": frozenset({date(2026, 6, 1)})})
    v2 = sla.evolve_calendar(
        v1, sla.set_calendar(v1, meta(MONDAY), with_holiday, "office closed")[0]
    )
    assert v2 is not None and v2.version == 2 and v2.calendar.is_holiday(date(2026, 6, 1))
    with pytest.raises(sla.SlaError, match="unchanged"):
        sla.set_calendar(v2, meta(MONDAY), with_holiday, None)


def test_escalation_steps_are_coherent() -> None:
    with pytest.raises(ValueError, match="hierarchical"):
        sla.EscalationStep(kind="hierarchical", target_type="vendor", target="acme")
    with pytest.raises(ValueError, match="names its target"):
        sla.EscalationStep(kind="functional", target_type="vendor")
    step = sla.EscalationStep(kind="functional", target_type="vendor", target="acme")
    assert step.target == "acme"


def test_a_plan_goes_to_the_queue_lead_unless_a_target_is_named() -> None:
    events = run(start(MONDAY), sla.RecordDue(until=MONDAY + 2 * HOUR))
    at_risk, breached = events[1], events[2]
    assert isinstance(at_risk, sla.SlaAtRisk) and isinstance(breached, sla.SlaBreached)
    rules = sla.EscalationRules(queue="network")
    plan = sla.plan_escalation(at_risk, rules, "agent:lena")
    assert plan is not None and (plan.kind, plan.target_type, plan.target) == (
        "hierarchical",
        "manager",
        "agent:lena",
    )
    vendor = sla.EscalationRule(
        on_breach=sla.EscalationStep(kind="functional", target_type="vendor", target="acme"),
        targets=("resolution",),
    )
    rules = rules.model_copy(update={"by_priority": {Priority.P2: vendor}})
    assert sla.plan_escalation(breached, rules, None) is None  # first response
    p3 = breached.model_copy(update={"priority": Priority.P3})
    assert sla.plan_escalation(p3, rules, None) is not None
    no_lead = sla.plan_escalation(at_risk.model_copy(update={"priority": Priority.P3}), rules, None)
    assert no_lead is not None and no_lead.target == "queue-lead:network"


def test_times_of_day_in_a_calendar_are_local() -> None:
    # The office's 09:00 in London is 08:00 UTC in summer.
    clock = clock_of(run(start(datetime(2026, 6, 2, 8, 0, tzinfo=UTC), Priority.P2, ENGLAND)))
    assert clock.first_response.due_at == datetime(2026, 6, 2, 10, 0, tzinfo=LONDON)
    assert ENGLAND.working_hours[0] == ((time(9), time(17)),)


def test_the_recorded_facts_need_no_clock() -> None:
    history = run(start(MONDAY))
    assert sla.facts(clock_of(history)).status == "on_track"  # however late it is now
    history = run(start(MONDAY), sla.RecordDue(until=MONDAY + 2 * HOUR))
    facts = sla.facts(clock_of(history))
    assert (facts.status, facts.breached, facts.due_at) == ("breached", True, MONDAY + HOUR)
    history += decide(sla.RecordFirstResponse(source_version=3, at=MONDAY + 2 * HOUR))(history)
    facts = sla.facts(clock_of(history))  # the late first response is met: resolution runs
    assert (facts.status, facts.breached, facts.due_at) == ("on_track", False, MONDAY + 8 * HOUR)
    history += decide(sla.PauseClock(source_version=4, at=MONDAY + 3 * HOUR))(history)
    assert sla.facts(clock_of(history)).status == "paused"
    assert sla.facts(clock_of(history)).due_at is None
