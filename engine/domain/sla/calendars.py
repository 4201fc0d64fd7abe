"""The business calendar aggregates: one per name, audited and versioned; the built-in
``business-hours`` and ``24x7`` calendars are version 0."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict

from engine.domain.base import CommandMeta, DomainEvent, EventFactory, Kind, derived_id
from engine.domain.calendar import BusinessCalendar
from engine.domain.sla.common import ALWAYS_ON, BUSINESS_HOURS, SlaError


def calendar_id(name: str) -> UUID:
    return derived_id("sla-calendar", name)


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


KIND = Kind("SlaCalendar", evolve_calendar, builtin_calendar)
"""Keyed by the calendar's name; a built-in calendar is in force until redefined."""
