"""Business-time arithmetic counts regular weeks at once (#15 item 1): the same answers as
walking day by day, at a cost that grows with what is irregular (holidays, offset changes,
pauses), not with the number of days."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain.calendar import BusinessCalendar, CalendarError, Pause, Shifts

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
ZONES = ["UTC", "Europe/London", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
COUNTRIES = [(None, None), ("GB", None), ("US", None), ("AU", "NSW"), ("DE", "BY")]
BASE = datetime(2024, 1, 1, tzinfo=UTC)
SPAN_MINUTES = 40 * 7 * 24 * 60  # windows of up to 40 weeks: several DST changes, holidays


class DayWalk(BusinessCalendar):
    """The reference: the same calendar that never counts a week at once, so every working
    period on the way is read one day at a time."""

    def _regular_weeks(
        self, at: datetime, stops: list[tuple[datetime, datetime]], most: int
    ) -> int:
        return 0


class Counting(BusinessCalendar):
    """Counts the days whose working periods it reads."""

    days_read: int = 0

    def _day_periods(self, day: date, zone: object) -> list[tuple[datetime, datetime]]:
        object.__setattr__(self, "days_read", self.days_read + 1)
        return super()._day_periods(day, zone)  # type: ignore[arg-type]


def walking(calendar: BusinessCalendar) -> DayWalk:
    return DayWalk.model_validate(calendar.model_dump())


def shift_lists() -> st.SearchStrategy[Shifts]:
    def pair(bounds: list[int]) -> Shifts:
        bounds = sorted(bounds)[: len(bounds) // 2 * 2]
        return tuple(
            (time(*divmod(a, 60)), time(*divmod(b % 1440, 60)))
            for a, b in zip(bounds[::2], bounds[1::2], strict=True)
        )

    minutes = st.one_of(st.integers(0, 96).map(lambda q: q * 15), st.sampled_from([60, 90, 150]))
    return st.lists(minutes, max_size=4, unique=True).map(pair)


@st.composite
def calendars(draw: st.DrawFn) -> BusinessCalendar:
    hours = {day: draw(shift_lists()) for day in range(7)}
    if not any(hours.values()):
        hours[draw(st.integers(0, 6))] = ((time(9), time(17)),)
    country, subdivision = draw(st.sampled_from(COUNTRIES))
    return BusinessCalendar(
        name="generated",
        timezone=draw(st.sampled_from(ZONES)),
        working_hours=hours,
        holidays=draw(st.frozensets(st.dates(date(2024, 1, 1), date(2025, 3, 1)), max_size=6)),
        holiday_country=country,
        holiday_subdivision=subdivision,
    )


def instants() -> st.SearchStrategy[datetime]:
    return st.integers(0, SPAN_MINUTES).map(lambda m: BASE + m * MINUTE)


def pause_lists(start: datetime, closed_only: bool) -> st.SearchStrategy[list[Pause]]:
    lengths = st.integers(0, 6 * 7 * 24 * 60)
    ends: st.SearchStrategy[int | None] = lengths if closed_only else st.one_of(st.none(), lengths)
    pause = st.tuples(st.integers(-1000, SPAN_MINUTES), ends).map(
        lambda p: (
            start + p[0] * MINUTE,
            None if p[1] is None else start + (p[0] + p[1]) * MINUTE,
        )
    )
    return st.lists(pause, max_size=3)


@settings(deadline=None, max_examples=150)
@given(calendar=calendars(), start=instants(), data=st.data())
def test_business_time_between_agrees_with_the_day_walk(
    calendar: BusinessCalendar, start: datetime, data: st.DataObject
) -> None:
    end = start + data.draw(st.integers(0, SPAN_MINUTES)) * MINUTE
    pauses = data.draw(pause_lists(start, closed_only=False))

    fast = calendar.business_time_between(start, end, pauses)

    assert fast == walking(calendar).business_time_between(start, end, pauses)


@settings(deadline=None, max_examples=150)
@given(calendar=calendars(), start=instants(), data=st.data())
def test_add_business_time_agrees_with_the_day_walk(
    calendar: BusinessCalendar, start: datetime, data: st.DataObject
) -> None:
    duration = data.draw(st.integers(0, 2000 * 60)) * MINUTE
    pauses = data.draw(pause_lists(start, closed_only=data.draw(st.booleans())))

    try:
        fast: datetime | str = calendar.add_business_time(start, duration, pauses)
    except CalendarError as e:
        fast = str(e)
    try:
        slow: datetime | str = walking(calendar).add_business_time(start, duration, pauses)
    except CalendarError as e:
        slow = str(e)

    assert fast == slow


def office(**fields: object) -> Counting:
    return Counting(name="office", timezone="Europe/London", **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("country", [None, "GB"])
def test_a_century_is_read_around_its_irregular_weeks_only(country: str | None) -> None:
    # Given a London office calendar (two offset changes a year, and with GB bank holidays
    # about eight holidays a year),
    calendar = office(holiday_country=country)
    start, end = datetime(2026, 1, 5, 9, tzinfo=UTC), datetime(2126, 1, 5, 9, tzinfo=UTC)

    # when a century of business time is counted,
    elapsed = calendar.business_time_between(start, end)

    # then only the weeks around its irregularities were walked, not 36,500 days,
    irregular_per_year = 2 + (8 if country else 0)
    assert calendar.days_read < 100 * irregular_per_year * 3 * 7
    # and the answer is the day walk's.
    assert elapsed == walking(calendar).business_time_between(start, end)


def test_a_long_target_on_a_sparse_calendar_reads_few_days() -> None:
    # One hour a week: the longest target (366 days of business time) is 168 years away.
    calendar = Counting(name="sparse", working_hours={2: ((time(9), time(10)),)})
    start = datetime(2026, 1, 5, tzinfo=UTC)

    due = calendar.add_business_time(start, timedelta(days=366))

    assert due == walking(calendar).add_business_time(start, timedelta(days=366))
    assert calendar.days_read < 168 * 30


def test_a_long_pause_is_not_walked_day_by_day() -> None:
    calendar = office(holiday_country="GB")
    start = datetime(2026, 1, 5, 9, tzinfo=UTC)
    pauses: list[Pause] = [(start + HOUR, start + timedelta(days=3650))]

    elapsed = calendar.business_time_between(start, start + timedelta(days=3660), pauses)

    assert elapsed == walking(calendar).business_time_between(
        start, start + timedelta(days=3660), pauses
    )
    assert calendar.days_read < 200


def test_business_time_far_in_the_future_is_refused_not_overflowed() -> None:
    calendar = BusinessCalendar(name="office")
    start = datetime(9989, 12, 1, tzinfo=UTC)

    with pytest.raises(CalendarError, match="computed up to"):
        calendar.add_business_time(start, timedelta(days=366))
