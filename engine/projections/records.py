"""What every view reads: one decoded notification, shared by all views in a batch.

Views work on the envelope as plain data (not on pydantic events) because a rebuild
decodes every event of the log once and pydantic validation would double its cost.
Older schema versions are upcast here, with the event class's own ``upcast``, so a
view only ever sees current data. Records are shared: views must not change them.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict, cast

from eventsourcing.persistence import Notification

from engine.domain.base import EVENT_TYPES, DomainEvent
from engine.envelope import EnvelopeError, decode_envelope, encode_envelope, to_envelope

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)
_DECODER = json.JSONDecoder()

try:  # orjson, when installed, parses an envelope about twice as fast
    _orjson_loads: Callable[[bytes], Any] | None = importlib.import_module("orjson").loads
except ImportError:  # pragma: no cover - depends on the environment
    _orjson_loads = None


def _parse(raw: bytes) -> Any:
    if _orjson_loads is not None:
        return _orjson_loads(raw)
    return _DECODER.raw_decode(raw.decode("utf-8"))[0]


_CURRENT = {name: cls.schema_version for name, cls in EVENT_TYPES.items()}


def to_us(value: datetime | str) -> int:
    """Microseconds since the Unix epoch (UTC), exact: the views' time column unit."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        raise ValueError(f"timestamp {value.isoformat()} has no time zone")
    return (value - EPOCH) // ONE_US


def from_us(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


class EventRecord(TypedDict):
    """One event at its position in the notification log: the decoded envelope itself
    (its other keys stay, unlisted) plus where and when. A plain dict, because a
    rebuild makes millions of them; views read it and never change it."""

    position: int
    type: str
    aggregate_type: str
    aggregate_id: str
    aggregate_version: int
    event_id: str
    occurred_at: str
    actor: str
    data: dict[str, Any]
    at: int  # occurred_at in microseconds since the epoch
    raw: bytes  # the stored envelope, byte for byte


class _Clock:
    """Parses occurred-at strings; the events of one command share theirs."""

    __slots__ = ("text", "us")

    def __init__(self) -> None:
        self.text, self.us = "", 0

    def __call__(self, text: str) -> int:
        if text != self.text:
            self.us, self.text = to_us(text), text
        return self.us


def _record(position: int, env: dict[str, Any], raw: bytes, clock: _Clock) -> EventRecord:
    type_name = env["type"]
    version = env["schema_version"]
    if type_name not in EVENT_TYPES:
        # A view must not pass over an event it cannot read: stop here, say where.
        raise KeyError(f"unknown event type {type_name!r}")
    if version != _CURRENT.get(type_name, version):
        env["data"] = EVENT_TYPES[type_name].upcast(dict(env["data"]), version)
    env["position"] = position
    env["at"] = clock(env["occurred_at"])
    env["raw"] = raw
    return cast(EventRecord, env)


def _fast(position: int, raw: bytes, clock: _Clock) -> EventRecord:
    try:
        env = _parse(raw)
        if "data" not in env or "aggregate_id" not in env:
            raise KeyError("data")
        return _record(position, env, raw, clock)
    except (ValueError, KeyError, TypeError, AttributeError):
        # Not a readable envelope: decode it the strict way for a precise error.
        try:
            env = decode_envelope(raw)
        except EnvelopeError as e:
            raise EnvelopeError(f"notification {position}: {e}") from None
        try:
            return _record(position, env, raw, clock)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise EnvelopeError(f"notification {position}: {e}") from None


def decode(notifications: Sequence[Notification]) -> list[EventRecord]:
    """Decode stored notifications; raises ``EnvelopeError`` on an unreadable record.

    The same steps as ``_fast``, inlined: a rebuild runs this loop once per event of the
    log. Anything unexpected goes the strict way (``_fast``) for a precise error."""
    parse = _orjson_loads or _parse
    current, upcast = _CURRENT, _upcast
    out: list[EventRecord] = []
    append = out.append
    text, us = "", 0
    for n in notifications:
        raw = n.state
        try:
            env = parse(raw)
            version = env["schema_version"]
            if version != current[env["type"]]:
                upcast(env, version)
            env["aggregate_id"]  # noqa: B018 (a key every view reads: it must be there)
            env["data"]  # noqa: B018
            if env["occurred_at"] != text:
                us, text = to_us(env["occurred_at"]), env["occurred_at"]
        except (ValueError, KeyError, TypeError, AttributeError):
            append(_fast(n.id, raw, _Clock()))  # raises EnvelopeError naming the position
            continue
        env["position"] = n.id
        env["at"] = us
        env["raw"] = raw
        append(env)
    return out


def _upcast(env: dict[str, Any], version: Any) -> None:
    env["data"] = EVENT_TYPES[env["type"]].upcast(dict(env["data"]), version)


def from_raw(position: int, raw: bytes) -> EventRecord:
    """The record of one stored envelope (as a view kept it)."""
    return _fast(position, raw, _Clock())


def from_domain_event(event: DomainEvent, position: int) -> EventRecord:
    """The record of a domain event (the library's ``Projection.process_event`` path)."""
    envelope = to_envelope(event)
    return _record(position, envelope, encode_envelope(envelope), _Clock())
