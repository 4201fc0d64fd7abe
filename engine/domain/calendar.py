"""Business calendars: working hours, holidays and business-time arithmetic for SLA clocks.

Pure domain code: instants are passed in (timezone-aware; results are UTC), nothing reads the
clock. Public holidays come from the ``holidays`` package's static data, per year, cached.

An instant is business time when its local wall-clock reading (``instant.astimezone(tz)``,
date and time) lies in a working interval of that weekday and the date is no holiday. So
09:00-17:00 stays 09:00-17:00 local on DST change days, and around a change:

- a skipped (nonexistent) local time is never read: an interval starting or ending in the gap
  starts or ends at the change;
- a repeated (ambiguous) local time is read twice and counts twice: 00:00-03:00 on a fall-back
  night is four real hours.

An interval ``(start, end)`` needs ``start < end``; an ``end`` of ``time(0)`` means 24:00, so
``(time(0), time(0))`` is the whole day. Overnight intervals are refused: split them in two.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import pairwise
from zoneinfo import ZoneInfo

from holidays import country_holidays
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.domain.base import DomainError
from engine.domain.values import WallTime

__all__ = ["BusinessCalendar", "CalendarError", "Pause", "Shift", "Shifts"]

Shift = tuple[WallTime, WallTime]
"""A working interval in local wall-clock time; an end of ``time(0)`` means 24:00."""

Shifts = tuple[Shift, ...]

Pause = tuple[datetime, datetime | None]
"""A stopped-clock interval; an end of ``None`` means still paused (open-ended)."""

MIDNIGHT = time(0)
NINE_TO_FIVE: Shifts = ((time(9), time(17)),)
MAX_IDLE_DAYS = 3660  # ~10 years without working time means the calendar never works.
_DAY = timedelta(days=1)
_FOREVER = datetime.max.replace(tzinfo=UTC)
_TICK = timedelta(microseconds=1)
_WEEK = timedelta(weeks=1)
# Whole weeks are counted at once only where nothing irregular lies within this margin.
_MARGIN = timedelta(days=2)
_MAX_JUMP_WEEKS = 53  # one jump covers at most a year, so each year's offsets are read once
_OFFSET_SAMPLE = timedelta(days=1)  # offset changes are found between samples this far apart
_LATEST = datetime(9990, 1, 1, tzinfo=UTC)  # business time is computed up to here


class CalendarError(DomainError, ValueError):
    """A calendar is malformed, or business time cannot be computed with it."""


@lru_cache(maxsize=256)
def _public_holidays(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    return frozenset(country_holidays(country, subdiv=subdivision, years=year))


@lru_cache(maxsize=1024)
def _sorted_public_holidays(country: str, subdivision: str | None, year: int) -> tuple[date, ...]:
    return tuple(sorted(_public_holidays(country, subdivision, year)))


@lru_cache(maxsize=256)
def _sorted_days(days: frozenset[date]) -> tuple[date, ...]:
    return tuple(sorted(days))


def _first_between(
    days: tuple[date, ...], first: date, last: date, weekdays: Iterable[int]
) -> date | None:
    """The earliest of the sorted ``days`` in [first, last] that falls on one of ``weekdays``."""
    wanted = set(weekdays)
    for day in days[bisect_left(days, first) :]:
        if day > last:
            return None
        if day.weekday() in wanted:
            return day
    return None


@lru_cache(maxsize=4096)
def _offset_changes(timezone: str, year: int) -> tuple[datetime, ...]:
    """The instants in (1 January ``year``, 1 January ``year + 1``] (UTC) at which the zone's
    UTC offset changes: sampled daily, each change found by bisection (two changes less than
    a day apart that cancel each other out are not seen)."""
    zone = ZoneInfo(timezone)
    low, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    previous = _offset(low.astimezone(zone), zone)
    changes = []
    while low < end:
        high = min(low + _OFFSET_SAMPLE, end)
        current = _offset(high.astimezone(zone), zone)
        if current != previous:
            changes.append(_offset_change(low, high, zone))
            previous = current
        low = high
    return tuple(changes)


def _next_offset_change(timezone: str, low: datetime, high: datetime) -> datetime | None:
    """The first instant in (low, high] at which the zone's UTC offset changes, if any."""
    for year in range(low.year, high.year + 1):
        for change in _offset_changes(timezone, year):
            if low < change <= high:
                return change
    return None


def _shift_length(shift: Shift) -> timedelta:
    start, end = shift
    ends = timedelta(days=1) if end == MIDNIGHT else _since_midnight(end)
    return ends - _since_midnight(start)


def _since_midnight(reading: time) -> timedelta:
    return timedelta(
        hours=reading.hour,
        minutes=reading.minute,
        seconds=reading.second,
        microseconds=reading.microsecond,
    )


def _utc(instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise CalendarError(f"instant {instant.isoformat()} must be timezone-aware")
    return instant.astimezone(UTC)


class BusinessCalendar(BaseModel):
    """Working hours per weekday (0 = Monday) in a time zone, minus holidays."""

    model_config = ConfigDict(frozen=True)

    name: str
    timezone: str = "UTC"
    working_hours: dict[int, Shifts] = Field(
        default_factory=lambda: dict.fromkeys(range(5), NINE_TO_FIVE)
    )
    holidays: frozenset[date] = frozenset()
    holiday_country: str | None = None
    holiday_subdivision: str | None = None

    @classmethod
    def always_on(cls, name: str = "24x7", timezone: str = "UTC") -> BusinessCalendar:
        """A calendar on which every instant is business time."""
        whole_day: Shifts = ((MIDNIGHT, MIDNIGHT),)
        return cls(name=name, timezone=timezone, working_hours=dict.fromkeys(range(7), whole_day))

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ValueError, KeyError):
            raise CalendarError(f"unknown IANA time zone {name!r}") from None
        return name

    @field_validator("working_hours")
    @classmethod
    def _well_formed_hours(cls, hours: dict[int, Shifts]) -> dict[int, Shifts]:
        checked: dict[int, Shifts] = {}
        for day, shifts in sorted(hours.items()):
            if day not in range(7):
                raise CalendarError(f"weekday {day} is not in 0 (Monday) .. 6 (Sunday)")
            ordered = tuple(sorted(shifts))
            for start, end in ordered:
                if start.tzinfo is not None or end.tzinfo is not None:
                    raise CalendarError("working hours are local wall-clock times, without tzinfo")
                if end != MIDNIGHT and end <= start:
                    raise CalendarError(
                        f"working interval {start}-{end} on weekday {day} must end after it "
                        "starts (overnight intervals are not supported; end 00:00 means 24:00)"
                    )
            for (_, end), (start, _) in pairwise(ordered):
                if end == MIDNIGHT or start < end:
                    raise CalendarError(f"working intervals on weekday {day} overlap")
            if ordered:
                checked[day] = ordered
        if not checked:
            raise CalendarError("a calendar needs at least one working interval")
        return checked

    @model_validator(mode="after")
    def _known_holiday_country(self) -> BusinessCalendar:
        if self.holiday_country is None and self.holiday_subdivision is not None:
            raise CalendarError("a holiday subdivision needs a holiday country")
        try:
            if self.holiday_country is not None:
                country_holidays(self.holiday_country, subdiv=self.holiday_subdivision)
        except NotImplementedError as error:
            raise CalendarError(f"no public holidays known: {error}") from None
        return self

    def is_holiday(self, day: date) -> bool:
        """Whether the local date is an explicit or a public holiday."""
        return day in self.holidays or (
            self.holiday_country is not None
            and day in _public_holidays(self.holiday_country, self.holiday_subdivision, day.year)
        )

    def is_business_time(self, instant: datetime) -> bool:
        """Whether the clock runs at this instant."""
        local = _utc(instant).astimezone(ZoneInfo(self.timezone))
        reading = local.time().replace(fold=0)
        return not self.is_holiday(local.date()) and any(
            start <= reading and (end == MIDNIGHT or reading < end)
            for start, end in self.working_hours.get(local.weekday(), ())
        )

    def next_business_start(self, instant: datetime) -> datetime:
        """The earliest business instant at or after ``instant`` (itself if business time)."""
        start = _utc(instant)
        period_start, _ = next(self._periods(start))
        return max(period_start, start)

    def business_time_between(
        self, start: datetime, end: datetime, pauses: Iterable[Pause] = ()
    ) -> timedelta:
        """Business time elapsed from ``start`` to ``end``, not counting ``pauses``.

        Raises ``CalendarError`` if ``end`` is before ``start``.
        """
        start, end = _utc(start), _utc(end)
        if end < start:
            raise CalendarError(f"end {end.isoformat()} is before start {start.isoformat()}")
        elapsed, _ = self._measure(start, _stops(pauses, start), until=end)
        return elapsed

    def add_business_time(
        self, start: datetime, duration: timedelta, pauses: Iterable[Pause] = ()
    ) -> datetime:
        """The earliest instant at which ``duration`` of business time has elapsed.

        This is an SLA due time: the clock starts at ``start`` or at the next working period,
        and stops during ``pauses``. Raises ``CalendarError`` for a negative duration, or if an
        open-ended pause stops the clock before the duration has elapsed.
        """
        start = _utc(start)
        if duration < timedelta():
            raise CalendarError(f"duration {duration} is negative")
        if not duration:
            return start
        _, instant = self._measure(start, _stops(pauses, start), budget=duration)
        return instant

    def _measure(
        self,
        start: datetime,
        stops: list[tuple[datetime, datetime]],
        until: datetime | None = None,
        budget: timedelta | None = None,
    ) -> tuple[timedelta, datetime]:
        """Run the clock from ``start`` to ``until`` (and answer the business time elapsed),
        or until ``budget`` of business time has elapsed (and answer that instant).

        The cost grows with what is irregular on the way, not with days: a stretch of whole
        weeks with no holiday on a working day, no change of UTC offset and no pause counts
        as that many times the week's working time, at once; only the weeks around a
        holiday, an offset change or a pause are walked period by period.
        """
        weekly = sum(
            (_shift_length(shift) for shifts in self.working_hours.values() for shift in shifts),
            timedelta(),
        )
        used, at = timedelta(), start
        while until is None or at < until:
            if at > _LATEST:
                raise CalendarError(f"business time is computed up to {_LATEST.isoformat()}")
            if until is not None:
                room = (until - at) // _WEEK
            else:
                assert budget is not None
                room = (budget - used - _TICK) // weekly
            weeks = self._regular_weeks(at, stops, min(room, _MAX_JUMP_WEEKS))
            if weeks:
                used, at = used + weeks * weekly, at + weeks * _WEEK
                continue
            # Walk a week period by period, up to the next running period after it.
            walk_end = at + _WEEK if until is None else min(at + _WEEK, until)
            for run_start, run_end in self._running(at, stops):
                if run_start >= walk_end:
                    at = run_start  # nothing runs from walk_end up to here
                    break
                if budget is not None and min(run_end, walk_end) - run_start >= budget - used:
                    return budget, run_start + (budget - used)
                used += min(run_end, walk_end) - run_start
                if run_end > walk_end:
                    at = walk_end
                    break
            else:  # an open-ended pause: the clock never runs again
                if budget is not None:
                    raise CalendarError(
                        "the clock is paused indefinitely before the duration has elapsed"
                    )
                break
        assert until is not None
        return used, until

    def _regular_weeks(
        self, at: datetime, stops: list[tuple[datetime, datetime]], most: int
    ) -> int:
        """How many whole weeks (up to ``most``) from ``at`` hold no pause, and, within a
        margin, no offset change and no holiday on a working weekday: each of them holds
        exactly one week's working time."""
        weeks = most
        for stop_start, stop_end in stops:
            if stop_end > at:
                if stop_start <= at:
                    return 0
                weeks = min(weeks, (stop_start - at) // _WEEK)
        if weeks <= 0:
            return 0
        change = _next_offset_change(self.timezone, at - _MARGIN, at + weeks * _WEEK + _MARGIN)
        if change is not None:
            weeks = min(weeks, (change - _MARGIN - at) // _WEEK)
        if weeks <= 0:
            return 0
        local = at.astimezone(ZoneInfo(self.timezone)).replace(tzinfo=None)
        holiday = self._first_holiday((local - _MARGIN).date(), (local + weeks * _WEEK).date())
        if holiday is not None:
            weeks = min(weeks, (datetime.combine(holiday, MIDNIGHT) - _MARGIN - local) // _WEEK)
        return max(weeks, 0)

    def _first_holiday(self, first: date, last: date) -> date | None:
        """The earliest holiday in [first, last + margin] on a weekday with working hours."""
        last += _MARGIN
        found = [_first_between(_sorted_days(self.holidays), first, last, self.working_hours)]
        if self.holiday_country is not None:
            for year in range(first.year, last.year + 1):
                public = _sorted_public_holidays(
                    self.holiday_country, self.holiday_subdivision, year
                )
                found.append(_first_between(public, first, last, self.working_hours))
        return min((day for day in found if day is not None), default=None)

    def _running(
        self, start: datetime, stops: list[tuple[datetime, datetime]]
    ) -> Iterator[tuple[datetime, datetime]]:
        """Disjoint UTC intervals after ``start``, in order, during which the clock runs
        (``stops``: sorted, may overlap: each is jumped past in turn)."""
        i = 0
        at = start
        while True:
            resume_at = None
            for period_start, period_end in self._periods(at):
                run_start = max(period_start, at)
                while run_start < period_end:
                    while i < len(stops) and stops[i][1] <= run_start:
                        i += 1
                    if i == len(stops) or stops[i][0] >= period_end:
                        yield run_start, period_end
                        break
                    stop_start, stop_end = stops[i]
                    if stop_start > run_start:
                        yield run_start, stop_start
                    if stop_end == _FOREVER:
                        return
                    run_start = stop_end
                if run_start > period_end + _MARGIN:
                    resume_at = run_start  # a long pause: read the days after it, not in it
                    break
            if resume_at is None:
                return
            at = resume_at

    def _periods(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working periods (UTC, in order) ending after ``start``; endless unless idle."""
        zone = ZoneInfo(self.timezone)
        # A day early: where clocks fall back across midnight, a later instant reads that date.
        day = start.astimezone(zone).date() - _DAY
        idle_days = 0
        while True:
            periods = self._day_periods(day, zone)
            yield from ((s, e) for s, e in periods if e > start)
            idle_days = 0 if periods else idle_days + 1
            if idle_days > MAX_IDLE_DAYS:
                raise CalendarError(
                    f"calendar {self.name!r} has no working time for "
                    f"{MAX_IDLE_DAYS} days from {day - MAX_IDLE_DAYS * _DAY}"
                )
            day += _DAY

    def _day_periods(self, day: date, zone: ZoneInfo) -> list[tuple[datetime, datetime]]:
        shifts = self.working_hours.get(day.weekday(), ())
        if not shifts or self.is_holiday(day):
            return []
        # Sorted, because on a fall-back night the pieces of two shifts can interleave.
        return sorted(piece for shift in shifts for piece in _wall_span(day, shift, zone))


def _stops(pauses: Iterable[Pause], start: datetime) -> list[tuple[datetime, datetime]]:
    """Pauses ending after ``start``, in UTC, sorted; open ones last forever."""
    stops = []
    for pause_start, pause_end in pauses:
        begin, end = _utc(pause_start), _FOREVER if pause_end is None else _utc(pause_end)
        if end < begin:
            raise CalendarError(f"pause ends at {end.isoformat()}, before it starts")
        if end > start:
            stops.append((begin, end))
    return sorted(stops)


def _wall_span(day: date, shift: Shift, zone: ZoneInfo) -> list[tuple[datetime, datetime]]:
    """The UTC pieces during which the wall clock reads ``day`` within ``shift``."""
    start = datetime.combine(day, shift[0])
    end = datetime.combine(day + _DAY if shift[1] == MIDNIGHT else day, shift[1])
    offsets = {_offset(wall.replace(fold=fold), zone) for wall in (start, end) for fold in (0, 1)}
    if len(offsets) == 1:
        (offset,) = offsets
        return [(_at(start, offset), _at(end, offset))]
    # The UTC offset changes once inside the shift: read the wall clock on either side.
    change = _offset_change(_at(start, max(offsets)), _at(end, min(offsets)), zone)
    before = _offset((change - _TICK).astimezone(zone), zone)
    after = _offset(change.astimezone(zone), zone)
    pieces = [
        (_at(start, before), min(_at(end, before), change)),
        (max(_at(start, after), change), _at(end, after)),
    ]
    return [(s, e) for s, e in pieces if s < e]


def _at(wall: datetime, offset: timedelta) -> datetime:
    """The UTC instant at which a clock running at ``offset`` reads ``wall``."""
    return (wall - offset).replace(tzinfo=UTC)


def _offset(local: datetime, zone: ZoneInfo) -> timedelta:
    offset = zone.utcoffset(local)
    assert offset is not None  # ZoneInfo always knows its offset.
    return offset


def _offset_change(low: datetime, high: datetime, zone: ZoneInfo) -> datetime:
    """The first instant in (low, high] whose UTC offset differs from low's (bisection)."""
    initial = _offset(low.astimezone(zone), zone)
    while high - low > _TICK:
        middle = low + (high - low) // 2
        if _offset(middle.astimezone(zone), zone) == initial:
            low = middle
        else:
            high = middle
    return high
