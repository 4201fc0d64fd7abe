"""Validated values that commands and queries carry: names, titles, free text, reasons and
queue names, each with its length bounds, and refused when not valid Unicode; instants
and times of day, in the one written form each, within bounds."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    StringConstraints,
    WithJsonSchema,
)


def _encodable(value: str) -> str:
    """Refuse text that is not valid Unicode (e.g. a lone surrogate sent as \\ud800)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text contains an unpaired surrogate; send valid UTF-8") from None
    return value


Encodable = AfterValidator(_encodable)
_Strip = {"strip_whitespace": True, "min_length": 1}
Name = Annotated[str, StringConstraints(**_Strip, max_length=100), Encodable]
Title = Annotated[str, StringConstraints(**_Strip, max_length=200), Encodable]
Text = Annotated[str, StringConstraints(**_Strip, max_length=10000), Encodable]
Reason = Annotated[str, StringConstraints(**_Strip, max_length=2000), Encodable]
QueueName = Annotated[
    str, StringConstraints(**_Strip, max_length=64, pattern=r"^[\w.\- ]+$"), Encodable
]

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
PrincipalId = Annotated[
    str,
    StringConstraints(pattern=rf"^(agent:)?{_UUID}$"),
    Field(
        description="an opaque principal id: a key holder's UUID (lower case), or "
        "agent:UUID for an agent; never a name or an email, which are personal data"
    ),
]
"""A principal's id as commands name it: opaque, so that it may stay in clear in every
event (``actor``, ``requester_id``, a sealed field's subject) after an erasure."""

# --- instants and times of day, as people write them -------------------------------------

EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)
"""Every instant a caller gives lies in [EARLIEST, LATEST] once in UTC, so that moving it
to UTC or a day either way never overflows."""

_ISO_INSTANT = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})"
)
_WALL_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?"


def _written_instant(value: object) -> object:
    """Only an ISO 8601 date and time with its offset: no numbers (seconds since 1970)."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_INSTANT.fullmatch(value.strip()):
        raise ValueError(
            "give an ISO 8601 date and time with its UTC offset, e.g. 2026-11-24T09:00:00Z"
        )
    try:  # parsed here, so that strict validation (stored events) reads it too
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{value.strip()!r} is not a date and time") from None


def _representable(value: datetime) -> datetime:
    try:
        in_utc = value.astimezone(UTC)
    except OverflowError:
        in_utc = None
    if in_utc is None or not EARLIEST <= in_utc <= LATEST:
        raise ValueError(
            f"must lie between {EARLIEST.date().isoformat()} and {LATEST.date().isoformat()} (UTC)"
        )
    return value


Instant = Annotated[
    AwareDatetime,
    BeforeValidator(_written_instant),
    AfterValidator(_representable),
]
"""An instant a caller gives (a query's time, an on-call window's ends)."""


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _written_day(value: object) -> object:
    """Only an ISO 8601 date, YYYY-MM-DD: no number."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DAY.fullmatch(value.strip()):
        raise ValueError("give an ISO 8601 date, YYYY-MM-DD")
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{value.strip()!r} is not a date") from None


Day = Annotated[date, BeforeValidator(_written_day)]
"""A calendar date (a holiday)."""


def _written_time(value: object) -> object:
    """Only a local time of day written HH:MM or HH:MM:SS: no offset, no number."""
    if isinstance(value, time):
        return value
    if not isinstance(value, str) or not re.fullmatch(_WALL_TIME, value.strip()):
        raise ValueError("give a local time of day as HH:MM or HH:MM:SS, without an offset")
    return time.fromisoformat(value.strip())


WallTime = Annotated[
    time,
    BeforeValidator(_written_time),
    # Not JSON Schema's format "time": that is RFC 3339's, which needs an offset.
    WithJsonSchema(
        {
            "type": "string",
            "pattern": f"^{_WALL_TIME}$",
            "description": "local wall-clock time of day, HH:MM or HH:MM:SS, without an offset",
        }
    ),
]
"""A local wall-clock time of day (a shift's start or end)."""
