"""Hypothesis for the SLA clock: random command sequences never break the clock's
invariants, every event round-trips through the envelope, and folding never raises."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid5

import jsonschema_rs
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain import sla
from engine.domain.base import CommandMeta, DomainEvent
from engine.domain.calendar import BusinessCalendar
from engine.domain.priority import Priority
from engine.stores.envelope import from_envelope, to_envelope
from engine.stores.jsonschema import event_schema

TICKET = UUID("00000000-0000-4000-8000-000000000001")
NS = UUID("00000000-0000-4000-8000-0000000000aa")
T0 = datetime(2026, 3, 27, 15, 0, tzinfo=UTC)  # a Friday before the clocks change in London

CALENDARS = [
    sla.CalendarVersion(version=0, calendar=sla.BUILTIN_CALENDARS["business-hours"]),
    sla.CalendarVersion(version=0, calendar=sla.BUILTIN_CALENDARS["24x7"]),
    sla.CalendarVersion(
        version=3,
        calendar=BusinessCalendar(
            name="london", timezone="Europe/London", holiday_country="GB", holiday_subdivision="ENG"
        ),
    ),
]
SCHEMAS = {
    cls.type_name: jsonschema_rs.Draft202012Validator(event_schema(cls))
    for cls in (
        sla.SlaClockStarted, sla.SlaClockPaused, sla.SlaClockResumed, sla.FirstResponseMet,
        sla.SlaAtRisk, sla.SlaBreached, sla.SlaMet, sla.SlaClockStopped,
    )
}  # fmt: skip
KINDS = ["respond", "pause", "resume", "resolve", "reopen", "retriage", "stop", "due", "due"]

steps = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(0, 3 * 24 * 60), st.sampled_from(list(Priority))),
    max_size=14,
)


def terms(priority: Priority, calendar: int, share: float) -> sla.ClockTerms:
    policy = sla.DEFAULT_POLICY.model_copy(update={"at_risk_share": share})
    return sla.terms_for(policy, CALENDARS[calendar], priority)


def command(
    kind: str, at: datetime, version: int, priority: Priority, calendar: int, share: float
) -> sla.ClockCommand:
    match kind:
        case "respond":
            return sla.RecordFirstResponse(source_version=version, at=at)
        case "pause":
            return sla.PauseClock(source_version=version, at=at)
        case "resume":
            return sla.ResumeClock(source_version=version, at=at)
        case "resolve":
            return sla.RecordResolution(source_version=version, at=at)
        case "reopen":
            return sla.ResumeClock(source_version=version, at=at, reason="reopened")
        case "retriage":
            return sla.StartClock(
                ticket_id=TICKET,
                source_version=version,
                opened_at=T0,
                terms=terms(priority, calendar, share),
            )
        case "stop":
            return sla.StopClock(source_version=version, at=at, reason="cancelled")
    return sla.RecordDue(until=at)


def history_of(
    plan: list[tuple[str, int, Priority]], priority: Priority, calendar: int, share: float
) -> tuple[list[DomainEvent], list[datetime]]:
    """Decide the plan's commands in turn; returns the events and each step's instant."""
    start = sla.StartClock(
        ticket_id=TICKET, source_version=2, opened_at=T0, terms=terms(priority, calendar, share)
    )
    meta = CommandMeta(actor="clock", occurred_at=T0, correlation_id=NS)
    history: list[DomainEvent] = list(sla.decide(None, start, meta))
    at, instants = T0, [T0]
    for i, (kind, minutes, new_priority) in enumerate(plan):
        at += timedelta(minutes=minutes)
        meta = CommandMeta(actor="clock", occurred_at=at, correlation_id=uuid5(NS, str(i)))
        cmd = command(kind, at, i + 3, new_priority, calendar, share)
        history += sla.decide(sla.fold(history), cmd, meta)
        instants.append(at)
    return history, instants


def check_invariants(history: list[DomainEvent], end: datetime) -> None:
    clock = sla.fold(history)
    assert clock is not None
    # The stream is gapless, and each event round-trips through the published envelope.
    assert [e.originator_version for e in history] == list(range(1, len(history) + 1))
    for event in history:
        envelope = to_envelope(event)
        assert from_envelope(envelope) == event
        assert SCHEMAS[event.type_name].is_valid(envelope), event.type_name
    # At-risk and breach at most once per target and term, and only once due.
    seen: set[tuple[str, str, int]] = set()
    for event in history:
        if isinstance(event, sla.SlaAtRisk | sla.SlaBreached):
            key = (event.type_name, event.target, event.term)
            assert key not in seen, f"{key} recorded twice"
            seen.add(key)
        if isinstance(event, sla.SlaBreached):
            assert event.due_at < event.occurred_at
        if isinstance(event, sla.SlaAtRisk):
            assert event.at_risk_at <= event.occurred_at and event.at_risk_at <= event.due_at
    # Due times agree with elapsed business time; a paused clock has none.
    for name in sla.TARGETS:
        target = clock.target(name)
        if target.met:
            continue
        if clock.phase == "paused":
            assert target.due_at is None
        if clock.phase == "running":
            assert target.due_at is not None and target.at_risk_at is not None
            assert clock.started_at <= target.at_risk_at <= target.due_at
            assert sla.elapsed(clock, name, target.due_at) == target.duration
        used = [sla.elapsed(clock, name, end + timedelta(hours=h)) for h in range(0, 72, 7)]
        assert used == sorted(used), "elapsed business time never runs backwards"
        assert used[0] <= end - clock.started_at
    # A met first response stays met; a met verdict matches the time used.
    for event in history:
        if isinstance(event, sla.FirstResponseMet):
            assert clock.first_response.met
            assert not event.within_target or event.elapsed <= clock.first_response.duration
    view = sla.view(clock, end)
    assert view.breached == (view.status == "breached")


@settings(max_examples=60, deadline=None)
@given(
    plan=steps,
    priority=st.sampled_from(list(Priority)),
    calendar=st.integers(0, len(CALENDARS) - 1),
    share=st.sampled_from([0.5, 0.75, 0.9]),
)
def test_random_command_sequences_keep_the_invariants(
    plan: list[tuple[str, int, Priority]], priority: Priority, calendar: int, share: float
) -> None:
    history, instants = history_of(plan, priority, calendar, share)
    check_invariants(history, instants[-1])


@settings(max_examples=60, deadline=None)
@given(
    plan=steps,
    priority=st.sampled_from(list(Priority)),
    calendar=st.integers(0, len(CALENDARS) - 1),
    data=st.data(),
)
def test_folding_any_sequence_of_clock_events_never_raises(
    plan: list[tuple[str, int, Priority]], priority: Priority, calendar: int, data: st.DataObject
) -> None:
    history, instants = history_of(plan, priority, calendar, 0.75)
    shuffled = data.draw(st.permutations(history))
    subset = data.draw(st.lists(st.sampled_from(history), max_size=20)) if history else []
    for events in (shuffled, subset, history[1:]):
        clock = sla.fold(events)
        if clock is not None:
            sla.view(clock, instants[-1])


@settings(max_examples=40, deadline=None)
@given(plan=steps, priority=st.sampled_from(list(Priority)))
def test_deciding_twice_is_deciding_once(
    plan: list[tuple[str, int, Priority]], priority: Priority
) -> None:
    # A second clock process reprocessing the same ticket events records nothing new.
    history, instants = history_of(plan, priority, 0, 0.75)
    at = instants[-1]
    meta = CommandMeta(actor="clock", occurred_at=at, correlation_id=NS)
    history += sla.decide(sla.fold(history), sla.RecordDue(until=at), meta)
    clock = sla.fold(history)
    for i, (kind, _, new_priority) in enumerate(plan):
        if kind == "due":
            continue
        replayed = command(kind, at, i + 3, new_priority, 0, 0.75)
        assert sla.decide(clock, replayed, meta) == []
    assert sla.decide(clock, sla.RecordDue(until=at), meta) == []
