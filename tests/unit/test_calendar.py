"""Business calendars: business-time arithmetic checked against a minute-by-minute reference."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from engine.domain.base import DomainError
from engine.domain.calendar import BusinessCalendar, CalendarError, Pause, Shifts

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
OFFICE = {day: ((time(9), time(17)),) for day in range(5)}
WINDOW_MINUTES = 4 * 24 * 60  # Brute force stays fast on windows of a few days.

# Zones with the dates their windows are sampled around: DST changes (London and New York
# by an hour, Lord Howe by half an hour), and public holidays next to weekends.
ZONES = [
    (
        "Europe/London",
        "GB",
        None,
        [date(2026, 3, 29), date(2026, 10, 25), date(2026, 12, 25), date(2026, 4, 3)],
    ),
    (
        "America/New_York",
        "US",
        None,
        [date(2026, 3, 8), date(2026, 11, 1), date(2026, 7, 3), date(2026, 11, 26)],
    ),
    ("Australia/Lord_Howe", "AU", "NSW", [date(2026, 4, 5), date(2026, 10, 4)]),
]

# Local times (minutes after midnight) in and around the changes above: London skips and
# repeats 01:00-02:00, New York skips 02:00-03:00 and repeats 01:00-02:00, Lord Howe skips
# 02:00-02:30 and repeats 01:30-02:00.
DST_MINUTES = [0, 60, 75, 90, 105, 120, 135, 150, 165, 180]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def uk_office() -> BusinessCalendar:
    return BusinessCalendar(name="uk-office", timezone="Europe/London", holiday_country="GB")


# -- the reference: read the wall clock once a minute ---------------------------------------


@lru_cache
def public_holidays(country: str, subdivision: str | None, year: int) -> set[date]:
    return set(holidays.country_holidays(country, subdiv=subdivision, years=year))


def ref_is_working(calendar: BusinessCalendar, instant: datetime) -> bool:
    local = instant.astimezone(ZoneInfo(calendar.timezone))
    day, minute = local.date(), local.hour * 60 + local.minute
    if day in calendar.holidays or (
        calendar.holiday_country
        and day in public_holidays(calendar.holiday_country, calendar.holiday_subdivision, day.year)
    ):
        return False
    return any(
        start.hour * 60 + start.minute <= minute < (end.hour * 60 + end.minute or 24 * 60)
        for start, end in calendar.working_hours.get(local.weekday(), ())
    )


def ref_is_running(calendar: BusinessCalendar, instant: datetime, pauses: list[Pause]) -> bool:
    paused = any(begin <= instant and (end is None or instant < end) for begin, end in pauses)
    return not paused and ref_is_working(calendar, instant)


def ref_between(
    calendar: BusinessCalendar, start: datetime, end: datetime, pauses: list[Pause]
) -> timedelta:
    minutes = int((end - start) / MINUTE)
    return MINUTE * sum(
        ref_is_running(calendar, start + i * MINUTE, pauses) for i in range(minutes)
    )


def ref_add(
    calendar: BusinessCalendar,
    start: datetime,
    duration: timedelta,
    pauses: list[Pause],
    limit: datetime,
) -> datetime:
    instant, elapsed = start, timedelta()
    while elapsed < duration:
        assert instant < limit, "reference ran past its window"
        if ref_is_running(calendar, instant, pauses):
            elapsed += MINUTE
        instant += MINUTE
    return instant


# -- strategies ----------------------------------------------------------------------------


def shifts(boundaries: st.SearchStrategy[int], max_shifts: int) -> st.SearchStrategy[Shifts]:
    """Sorted, disjoint shifts between distinct minute boundaries (1440 is the end of day)."""

    def pair(bounds: list[int]) -> Shifts:
        bounds = sorted(bounds)[: len(bounds) // 2 * 2]
        return tuple(
            (time(*divmod(a, 60)), time(*divmod(b % 1440, 60)))
            for a, b in zip(bounds[::2], bounds[1::2], strict=True)
        )

    return st.lists(boundaries, max_size=2 * max_shifts, unique=True).map(pair)


@st.composite
def working_hours(draw: st.DrawFn) -> dict[int, Shifts]:
    """Random shifts on quarter hours, often starting or ending in a DST change."""
    boundaries = st.one_of(st.integers(0, 96).map(lambda q: q * 15), st.sampled_from(DST_MINUTES))
    hours = {day: draw(shifts(boundaries, max_shifts=3)) for day in range(7)}
    if not any(hours.values()):
        hours[6] = ((time(1), time(3)),)
    return hours


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[BusinessCalendar, datetime]:
    """A calendar and a minute-aligned instant near one of its zone's interesting dates."""
    zone, country, subdivision, anchors = draw(st.sampled_from(ZONES))
    anchor = draw(st.sampled_from(anchors))
    with_country = draw(st.booleans())
    calendar = BusinessCalendar(
        name="generated",
        timezone=zone,
        working_hours=draw(st.one_of(st.just(OFFICE), working_hours())),
        holidays=draw(
            st.frozensets(
                st.dates(anchor - timedelta(days=4), anchor + timedelta(days=8)), max_size=2
            )
        ),
        holiday_country=country if with_country else None,
        holiday_subdivision=subdivision if with_country else None,
    )
    offset = draw(st.integers(-3 * 24 * 60, 3 * 24 * 60))
    return calendar, datetime.combine(anchor, time(0), UTC) + offset * MINUTE


def pause_lists(start: datetime, closed_only: bool = False) -> st.SearchStrategy[list[Pause]]:
    """Up to three pauses around a window starting at ``start``, possibly overlapping."""
    ends = st.integers(0, WINDOW_MINUTES // 2)
    if not closed_only:
        ends = st.one_of(st.none(), ends)
    pause = st.tuples(st.integers(-600, WINDOW_MINUTES), ends).map(
        lambda p: (
            start + p[0] * MINUTE,
            None if p[1] is None else start + (p[0] + p[1]) * MINUTE,
        )
    )
    return st.lists(pause, max_size=3)


# -- agreement with the reference -----------------------------------------------------------


@settings(deadline=None)
@given(scenario=scenarios(), data=st.data())
def test_business_time_between_matches_the_reference(
    scenario: tuple[BusinessCalendar, datetime], data: st.DataObject
) -> None:
    calendar, start = scenario
    end = start + data.draw(st.integers(0, WINDOW_MINUTES)) * MINUTE
    pauses = data.draw(pause_lists(start))

    assert calendar.business_time_between(start, end, pauses) == ref_between(
        calendar, start, end, pauses
    )


@settings(deadline=None)
@given(scenario=scenarios(), data=st.data())
def test_add_business_time_matches_the_reference(
    scenario: tuple[BusinessCalendar, datetime], data: st.DataObject
) -> None:
    calendar, start = scenario
    pauses = data.draw(pause_lists(start))
    # Pick the duration as the business time of a window, so the reference stays inside it.
    window_end = start + data.draw(st.integers(0, WINDOW_MINUTES)) * MINUTE
    duration = ref_between(calendar, start, window_end, pauses)

    assert calendar.add_business_time(start, duration, pauses) == ref_add(
        calendar, start, duration, pauses, limit=window_end
    )


@settings(deadline=None)
@given(scenario=scenarios())
def test_is_business_time_and_next_business_start_match_the_reference(
    scenario: tuple[BusinessCalendar, datetime],
) -> None:
    calendar, instant = scenario
    assert calendar.is_business_time(instant) == ref_is_working(calendar, instant)

    # The next start is business time, with none between the instant and it.
    next_start = calendar.next_business_start(instant)
    assert next_start >= instant
    assert ref_is_working(calendar, next_start)
    assert calendar.business_time_between(instant, next_start) == timedelta()
    if calendar.is_business_time(instant):
        assert next_start == instant


@st.composite
def dst_nights(draw: st.DrawFn) -> tuple[BusinessCalendar, datetime, datetime]:
    """Night shifts on a DST change Sunday, and a window covering that whole night."""
    zone, _, _, anchors = draw(st.sampled_from(ZONES))
    sunday = draw(st.sampled_from([day for day in anchors if day.weekday() == 6]))
    night = draw(shifts(st.sampled_from(DST_MINUTES), max_shifts=3).filter(bool))
    calendar = BusinessCalendar(name="night", timezone=zone, working_hours={6: night})
    start = datetime.combine(sunday, time(0), UTC) + draw(st.integers(-24 * 60, -12 * 60)) * MINUTE
    return calendar, start, start + 2 * 24 * HOUR


@settings(deadline=None)
@given(night=dst_nights(), data=st.data())
def test_shifts_on_dst_change_nights_match_the_reference(
    night: tuple[BusinessCalendar, datetime, datetime], data: st.DataObject
) -> None:
    calendar, start, end = night
    pauses = data.draw(pause_lists(start))
    assert calendar.business_time_between(start, end, pauses) == ref_between(
        calendar, start, end, pauses
    )

    duration = data.draw(st.integers(0, 5 * 60)) * MINUTE
    if duration <= ref_between(calendar, start, end, pauses):
        assert calendar.add_business_time(start, duration, pauses) == ref_add(
            calendar, start, duration, pauses, limit=end
        )


# -- algebraic properties (no brute force, so longer durations) -----------------------------

durations = st.integers(0, 200 * 60).map(lambda minutes: minutes * MINUTE)


@settings(deadline=None)
@given(scenario=scenarios(), duration=durations, data=st.data())
def test_add_then_between_round_trips(
    scenario: tuple[BusinessCalendar, datetime], duration: timedelta, data: st.DataObject
) -> None:
    calendar, start = scenario
    pauses = data.draw(pause_lists(start, closed_only=True))

    due = calendar.add_business_time(start, duration, pauses)

    assert due >= start
    assert calendar.business_time_between(start, due, pauses) == duration


@settings(deadline=None)
@given(scenario=scenarios(), first=durations, second=durations)
def test_later_targets_are_due_later_and_elapsed_time_grows(
    scenario: tuple[BusinessCalendar, datetime], first: timedelta, second: timedelta
) -> None:
    calendar, start = scenario
    shorter, longer = sorted((first, second))
    assert calendar.add_business_time(start, shorter) <= calendar.add_business_time(start, longer)

    near, far = start + shorter, start + longer
    assert calendar.business_time_between(start, near) <= calendar.business_time_between(start, far)
    # Elapsed time adds up over consecutive windows.
    assert calendar.business_time_between(start, far) == calendar.business_time_between(
        start, near
    ) + calendar.business_time_between(near, far)


@settings(deadline=None)
@given(scenario=scenarios(), duration=durations, data=st.data())
def test_pauses_never_add_elapsed_time(
    scenario: tuple[BusinessCalendar, datetime], duration: timedelta, data: st.DataObject
) -> None:
    calendar, start = scenario
    pauses = data.draw(pause_lists(start, closed_only=True))
    end = start + duration

    assert calendar.business_time_between(start, end, pauses) <= calendar.business_time_between(
        start, end
    )
    assert calendar.add_business_time(start, duration, pauses) >= calendar.add_business_time(
        start, duration
    )


@given(
    zone=st.sampled_from([z[0] for z in ZONES]),
    start=st.datetimes(datetime(2025, 1, 1), datetime(2028, 1, 1), timezones=st.just(UTC)),
    duration=st.timedeltas(timedelta(), timedelta(days=30)),
)
def test_an_always_on_calendar_counts_wall_time(
    zone: str, start: datetime, duration: timedelta
) -> None:
    calendar = BusinessCalendar.always_on(timezone=zone)

    assert calendar.business_time_between(start, start + duration) == duration
    assert calendar.add_business_time(start, duration) == start + duration
    assert calendar.is_business_time(start)


# -- named examples -------------------------------------------------------------------------


def test_the_holidays_package_knows_the_2026_uk_christmas_bank_holidays() -> None:
    uk = holidays.country_holidays("GB", years=2026)
    assert date(2026, 12, 25) in uk
    assert date(2026, 12, 28) in uk  # Boxing Day falls on a Saturday: Monday is observed.


def test_a_p1_opened_on_christmas_eve_is_due_after_the_bank_holidays() -> None:
    # Opened 16:55 GMT on Friday 2026-12-24 with a four business hour target.
    opened = utc(2026, 12, 24, 16, 55)

    due = uk_office().add_business_time(opened, 4 * HOUR)

    # Five minutes on Friday; Christmas, the weekend and Monday's substitute Boxing Day
    # are skipped; the remaining 3h55 run from 09:00 on Tuesday.
    assert due == utc(2026, 12, 29, 12, 55)


def test_time_pending_over_a_weekend_is_not_counted() -> None:
    calendar = uk_office()
    opened = utc(2026, 6, 5, 14)  # Friday 15:00 BST.
    pending = (utc(2026, 6, 5, 15), utc(2026, 6, 8, 9))  # Friday 16:00 to Monday 10:00 BST.
    resolved = utc(2026, 6, 8, 10)  # Monday 11:00 BST.

    assert calendar.business_time_between(opened, resolved) == 4 * HOUR
    assert calendar.business_time_between(opened, resolved, [pending]) == 2 * HOUR
    # Still pending: the clock has been stopped since Friday 16:00.
    assert calendar.business_time_between(opened, resolved, [(pending[0], None)]) == HOUR


def test_a_due_time_over_a_dst_weekend_keeps_local_office_hours() -> None:
    # London springs forward on Sunday 2026-03-29; New York falls back on 2026-11-01.
    london = uk_office()
    new_york = BusinessCalendar(name="ny", timezone="America/New_York", holiday_country="US")

    assert london.add_business_time(utc(2026, 3, 27, 16), 2 * HOUR) == utc(2026, 3, 30, 9)
    assert new_york.add_business_time(utc(2026, 10, 30, 20), 2 * HOUR) == utc(2026, 11, 2, 15)


def test_shifts_in_a_dst_change_follow_the_wall_clock() -> None:
    night = BusinessCalendar(
        name="night", timezone="Europe/London", working_hours={6: ((time(0), time(3)),)}
    )
    # The clock skips 01:00-02:00 in spring and reads it twice in autumn.
    assert night.business_time_between(utc(2026, 3, 28), utc(2026, 3, 30)) == 2 * HOUR
    assert night.business_time_between(utc(2026, 10, 24), utc(2026, 10, 26)) == 4 * HOUR

    skipped_start = night.model_copy(update={"working_hours": {6: ((time(1, 30), time(3)),)}})
    # Starts when 01:30 is first passed: at the jump to 02:00 BST.
    assert skipped_start.next_business_start(utc(2026, 3, 28)) == utc(2026, 3, 29, 1)
    assert skipped_start.business_time_between(utc(2026, 3, 28), utc(2026, 3, 30)) == HOUR

    repeated = night.model_copy(update={"working_hours": {6: ((time(1, 15), time(1, 45)),)}})
    assert repeated.is_business_time(utc(2026, 10, 25, 0, 30))  # 01:30 BST.
    assert not repeated.is_business_time(utc(2026, 10, 25, 0, 50))  # 01:50 BST.
    assert repeated.is_business_time(utc(2026, 10, 25, 1, 30))  # 01:30 GMT.
    assert repeated.add_business_time(utc(2026, 10, 25), 45 * MINUTE) == utc(2026, 10, 25, 1, 30)


def test_an_end_of_midnight_means_the_end_of_the_day() -> None:
    late = BusinessCalendar(name="late", working_hours={0: ((time(20), time(0)),)})
    monday = utc(2026, 6, 1)

    assert late.business_time_between(monday, monday + 2 * 24 * HOUR) == 4 * HOUR
    assert late.add_business_time(monday, 4 * HOUR) == utc(2026, 6, 2)


def test_explicit_holidays_and_subdivisions_are_skipped() -> None:
    england = uk_office().model_copy(update={"holiday_subdivision": "ENG"})
    closed = uk_office().model_copy(update={"holidays": frozenset({date(2026, 6, 8)})})

    assert england.is_holiday(date(2026, 4, 6))  # Easter Monday, not a GB-wide holiday.
    assert not uk_office().is_holiday(date(2026, 4, 6))
    assert closed.add_business_time(utc(2026, 6, 5, 15), 2 * HOUR) == utc(2026, 6, 9, 9)


def test_long_targets_are_computed_per_working_period() -> None:
    start = utc(2026, 1, 5, 9)  # Monday 09:00 GMT.

    due = uk_office().add_business_time(start, 4000 * HOUR)

    # 500 working days of 8 hours, the last one Thursday 2027-12-16 (ending 17:00 GMT).
    assert due == utc(2027, 12, 16, 17)
    assert uk_office().business_time_between(start, due) == 4000 * HOUR


def test_a_calendar_round_trips_through_json() -> None:
    calendar = uk_office().model_copy(update={"holidays": frozenset({date(2026, 6, 8)})})

    assert BusinessCalendar.model_validate_json(calendar.model_dump_json()) == calendar


# -- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "unknown IANA time zone"),
        ({"working_hours": {0: ((time(17), time(9)),)}}, "must end after it starts"),
        ({"working_hours": {0: ((time(9), time(9)),)}}, "must end after it starts"),
        ({"working_hours": {0: ((time(9), time(13)), (time(12), time(17)))}}, "overlap"),
        ({"working_hours": {7: ((time(9), time(17)),)}}, "not in 0"),
        ({"working_hours": {}}, "at least one working interval"),
        ({"working_hours": {0: ()}}, "at least one working interval"),
        ({"holiday_country": "XX"}, "no public holidays known"),
        ({"holiday_subdivision": "ENG"}, "needs a holiday country"),
    ],
)
def test_malformed_calendars_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        BusinessCalendar(name="bad", **fields)


def test_a_calendar_that_never_works_raises_instead_of_looping() -> None:
    mondays = frozenset(date(2026, 1, 5) + timedelta(weeks=n) for n in range(12 * 53))
    never = BusinessCalendar(
        name="never", working_hours={0: ((time(9), time(17)),)}, holidays=mondays
    )

    with pytest.raises(CalendarError, match="no working time"):
        never.add_business_time(utc(2026, 1, 1), HOUR)
    with pytest.raises(CalendarError, match="no working time"):
        never.next_business_start(utc(2026, 1, 1))


def test_bad_arguments_raise_calendar_errors() -> None:
    calendar, start = uk_office(), utc(2026, 6, 1, 9)

    with pytest.raises(CalendarError, match="timezone-aware"):
        calendar.is_business_time(datetime(2026, 6, 1, 9))
    with pytest.raises(CalendarError, match="negative"):
        calendar.add_business_time(start, -MINUTE)
    with pytest.raises(CalendarError, match="before start"):
        calendar.business_time_between(start, start - MINUTE)
    with pytest.raises(CalendarError, match="before it starts"):
        calendar.business_time_between(start, start + HOUR, [(start, start - MINUTE)])
    with pytest.raises(CalendarError, match="paused indefinitely"):
        calendar.add_business_time(start, 2 * HOUR, [(start + HOUR, None)])
    # A due time reached before an open-ended pause starts is still known.
    assert calendar.add_business_time(start, HOUR, [(start + HOUR, None)]) == start + HOUR


def test_calendar_errors_are_domain_errors_and_value_errors() -> None:
    assert issubclass(CalendarError, DomainError)
    assert issubclass(CalendarError, ValueError)
