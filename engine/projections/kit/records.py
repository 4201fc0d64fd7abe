"""What every view reads: one decoded notification, shared by all views in a batch.

Views work on the envelope as plain data (not on pydantic events) because a rebuild
decodes every event of the log once and pydantic validation would double its cost.
Older schema versions are upcast here, with the event class's own ``upcast``, so a
view only ever sees current data. Records are shared: views must not change them.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from enum import Enum
from operator import itemgetter
from types import UnionType
from typing import Any, Literal, TypedDict, Union, cast, get_args, get_origin
from uuid import UUID

from annotated_types import Ge, Gt, Le, Lt
from eventsourcing.persistence import Notification
from pydantic import AwareDatetime, TypeAdapter

from engine.domain.base import EVENT_TYPES, DomainEvent
from engine.integrity.personal import MARK
from engine.stores.envelope import (
    ENVELOPE_KEYS,
    EnvelopeError,
    decode_envelope,
    encode_envelope,
    from_envelope,
    to_envelope,
)

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


class UnreadableRecordError(EnvelopeError):
    """The record at ``position`` of the log is no readable envelope (names why)."""

    def __init__(self, position: int, problem: object) -> None:
        super().__init__(f"notification {position}: {problem}")
        self.position = position


_CURRENT = {name: cls.schema_version for name, cls in EVENT_TYPES.items()}
Check = Callable[[dict[str, Any], Callable[[Any], None]], bool]
"""Whether a parsed current-version envelope is, field by field, one the mapper reads;
it hands the uuids of its data to the callable, and those and its envelope's ids are
checked for a whole batch (``_well_written``)."""


def _never(env: dict[str, Any], ids: Any) -> bool:
    return False


# A time as pydantic writes it (what the mapper's notation check wants in data).
_TIME = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.(?!0{6})\d{6})?(Z|[+-](?!00:00)\d\d:\d\d)"
).fullmatch
# An occurred_at both the mapper's pydantic and the views' clock read alike.
_OCCURRED = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)").fullmatch


def _uuids(values: list[Any]) -> bool:
    """Whether all ``values`` are uuids as the mapper writes them (lower case, dashes),
    checked at once for a batch: a few passes in C over their ASCII bytes rather than a
    regular expression per value. Joined by dashes, every dash is where one belongs (so
    each value is 36 long) and every other byte a lower-case hex digit."""
    n = len(values)
    try:
        text = "-".join(values).encode("ascii")  # TypeError, UnicodeEncodeError
    except (TypeError, ValueError):
        return False
    return not n or (
        len(text) == 37 * n - 1
        and text.count(b"-") == 5 * n - 1
        and text[8::37] == text[13::37] == text[18::37] == text[23::37] == b"-" * n
        and text[36::37] == b"-" * (n - 1)
        and not text.translate(None, _HEX_OR_DASH)
    )


def _digests(values: list[Any]) -> bool:
    """Whether all ``values`` are SHA-256 hex digests in lower case (as ``_uuids``)."""
    n = len(values)
    try:
        text = "-".join(values).encode("ascii")
    except (TypeError, ValueError):
        return False
    return not n or (
        len(text) == 65 * n - 1
        and text.count(b"-") == n - 1
        and text[64::65] == b"-" * (n - 1)
        and not text.translate(None, _HEX_OR_DASH)
    )


_HEX_OR_DASH = b"0123456789abcdef-"
_IDS = [itemgetter(key) for key in ("event_id", "aggregate_id", "correlation_id")]
_CAUSATION, _HASH, _PREV_HASH = map(itemgetter, ("causation_id", "hash", "prev_hash"))


def _well_written(envs: list[Any], ids: list[Any]) -> bool:
    """Whether the ids and digests of checked envelopes (and ``ids`` from their data)
    are written as the mapper writes them."""
    try:  # KeyError: a key missing from an envelope
        ids.extend(c for c in map(_CAUSATION, envs) if c is not None)
        for get in _IDS:
            ids.extend(map(get, envs))
        digests = list(map(_HASH, envs))
        digests.extend(p for p in map(_PREV_HASH, envs) if p is not None)
    except KeyError:
        return False
    return _uuids(ids) and _digests(digests)


def _time(value: Any) -> bool:
    if type(value) is not str or _TIME(value) is None:
        return False
    try:
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


_BOUNDS = {Ge: (">=", "ge"), Gt: (">", "gt"), Le: ("<=", "le"), Lt: ("<", "lt")}


def _test(
    annotation: Any, v: str, metadata: Sequence[Any], names: dict[str, Any], personal: bool
) -> str | None:
    """A Python expression true when ``v`` (JSON as parsed) is a value of ``annotation``
    that the mapper reads, in its own notation; None for a type left to the mapper.
    (False is no refusal: the mapper then reads the envelope, or says why not.)"""
    if get_origin(annotation) in (Union, UnionType):
        args = get_args(annotation)
        if len(args) != 2 or type(None) not in args:
            return None
        (inner,) = (a for a in args if a is not type(None))
        test = _test(inner, v, metadata, names, personal)
        return None if test is None else f"({v} is None or {test})"
    if get_origin(annotation) is Literal:
        values = get_args(annotation)
        if not all(type(x) is str for x in values):
            return None
        names[f"L{len(names)}"] = frozenset(values)
        return f"(type({v}) is str and {v} in L{len(names) - 1})"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        members = [m.value for m in annotation]
        if not all(type(x) is str for x in members):
            return None
        names[f"L{len(names)}"] = frozenset(members)
        return f"(type({v}) is str and {v} in L{len(names) - 1})"
    bounds = []
    for m in metadata:
        if type(m) not in _BOUNDS:
            return None  # another constraint: left to the mapper
        op, attribute = _BOUNDS[type(m)]
        bound = getattr(m, attribute)
        if type(bound) not in (int, float):
            return None
        bounds.append(f" and {v} {op} {bound!r}")
    if annotation is int:
        return f"(type({v}) is int{''.join(bounds)})"
    if annotation is float:  # ints are floats in JSON; NaN is not written as itself
        return f"((type({v}) is float or type({v}) is int) and {v} == {v}{''.join(bounds)})"
    if bounds:
        return None
    if annotation is str and personal:
        # or sealed, as engine.integrity.personal writes it (the mapper reads it as
        # "[erased]" without the key; views that show it unseal it)
        return f"(type(x := {v}) is str or type(x) is dict and x.get({MARK!r}) == 'A256GCM')"
    if annotation is str:
        return f"(type({v}) is str)"
    if annotation is bool:
        return f"(type({v}) is bool)"
    if annotation is UUID:
        return f"not ids(({v},))"
    if annotation is AwareDatetime:
        return f"time({v})"
    return None  # nested models, durations, lists, mappings: left to the mapper


def _compile(cls: type[DomainEvent]) -> Check:
    """The check of ``cls``'s current-version envelopes, as one Python function, or
    ``_never`` when a field's type is left to the mapper."""
    names: dict[str, Any] = {}
    tests = []
    required: list[str] = []
    optional: list[str] = []
    for name, info in cls.model_fields.items():
        if name in DomainEvent.ENVELOPE_FIELDS:
            continue
        personal = name in cls.personal_fields
        test = _test(info.annotation, f"d[{name!r}]", info.metadata, names, personal)
        if test is None:
            return _never
        if info.is_required():
            required.append(name)
            tests.append(test)
        else:
            optional.append(f"({name!r} in d)")
            tests.append(f"({name!r} not in d or {test})")
    source = "\n        and ".join(
        [
            f"e['schema_version'] == {cls.schema_version!r}",
            "type(e['schema_version']) is int",
            f"e['aggregate_type'] == {cls.aggregate_type!r}",
            "type(e['aggregate_version']) is int",
            "type(e['actor']) is str",
            "type(d := e['data']) is dict",
            # Each required key is read below (a KeyError when missing): none other.
            f"len(d) == {' + '.join([str(len(required)), *optional])}",
            *tests,
        ]
    )
    scope = {**names, "time": _time}
    exec(f"def check(e, ids):\n    return (\n        {source}\n    )", scope)  # noqa: S102
    return cast(Check, scope["check"])


_CHECKS: dict[str, Check] = {name: _compile(cls) for name, cls in EVENT_TYPES.items()}


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


_NO_TEXT = object()
"""No occurred-at read yet: unequal to any JSON value (None or "" are read, not taken
for the epoch)."""


class _Clock:
    """Parses occurred-at strings; the events of one command share theirs."""

    __slots__ = ("text", "us")

    def __init__(self) -> None:
        self.text: object = _NO_TEXT
        self.us = 0

    def __call__(self, text: str) -> int:
        if text != self.text:
            self.us, self.text = _occurred_us(text), text
        return self.us


def _record(position: int, env: dict[str, Any], raw: bytes, clock: _Clock) -> EventRecord:
    type_name = env["type"]
    version = env["schema_version"]
    if type_name not in EVENT_TYPES:
        # A view must not pass over an event it cannot read: stop here, say where.
        raise KeyError(f"unknown event type {type_name!r}")
    ids: list[Any] = []
    try:
        read = _CHECKS[type_name](env, ids.extend) and _well_written([env], ids)
    except (ValueError, KeyError, TypeError, AttributeError):
        read = False
    if not read:
        _upcast(env, version)  # raises EnvelopeError when the mapper cannot read it either
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
            raise UnreadableRecordError(position, e) from None
        try:
            return _record(position, env, raw, clock)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise UnreadableRecordError(position, e) from None


def decode(notifications: Sequence[Notification]) -> list[EventRecord]:
    """Decode stored notifications; raises ``UnreadableRecordError`` (an
    ``EnvelopeError``) on an unreadable record.

    The same steps as ``_fast``, inlined: a rebuild runs this loop once per event of the
    log. Anything unexpected goes the strict way (``_fast``) for a precise error."""
    parse = _orjson_loads or _parse
    checks, upcast, occurred_us = _CHECKS, _upcast, _occurred_us
    ids: list[Any] = []
    add_ids = ids.extend
    out: list[EventRecord] = []
    append = out.append
    text: object = _NO_TEXT
    us = 0
    for n in notifications:
        raw = n.state
        try:
            env = parse(raw)
            if not checks[env["type"]](env, add_ids):
                upcast(env, env["schema_version"])
            if env["occurred_at"] != text:
                us, text = occurred_us(env["occurred_at"]), env["occurred_at"]
        except (ValueError, KeyError, TypeError, AttributeError):
            append(_fast(n.id, raw, _Clock()))  # raises EnvelopeError naming the position
            continue
        env["position"] = n.id
        env["at"] = us
        env["raw"] = raw
        append(env)
    if not _well_written(cast(list[Any], out), ids):
        # Some id is not written as the mapper writes it: find which, one by one.
        return [_fast(n.id, n.state, _Clock()) for n in notifications]
    return out


def _upcast(env: dict[str, Any], version: Any) -> None:
    """What the checks leave to the mapper (older versions, nested values, another
    notation): it reads the envelope or raises ``EnvelopeError`` saying why."""
    from_envelope(env)
    if version != _CURRENT[env["type"]]:
        env["data"] = EVENT_TYPES[env["type"]].upcast(dict(env["data"]), version)


_INSTANT = TypeAdapter(AwareDatetime)


def _occurred_us(text: str) -> int:
    """``occurred_at`` in microseconds, when the mapper reads it as the same instant."""
    if type(text) is not str or _OCCURRED(text) is None:
        # Another notation: the views read it only as the mapper does.
        instant = _INSTANT.validate_json(json.dumps(text), strict=True)  # a ValueError
        if datetime.fromisoformat(text) != instant:
            raise ValueError(f"occurred_at {text!r} is no time the mapper reads")
    return to_us(text)


def check_type(notification: Notification) -> None:
    """Check that a record no view reads is an envelope of the type its topic names,
    so that a foreign record cannot pass under such a name (its fields are not
    validated: no view reads them). Raises ``EnvelopeError`` naming its position."""
    position, raw, topic = notification.id, notification.state, notification.topic
    try:
        env = _parse(raw)
        if env["type"] == topic and _KEYS <= env.keys():
            return
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    try:
        env = decode_envelope(raw)
    except EnvelopeError as e:
        raise UnreadableRecordError(position, e) from None
    raise UnreadableRecordError(
        position, f"an envelope of type {env['type']!r} is recorded as {topic!r}"
    )


_KEYS = frozenset(ENVELOPE_KEYS)


def from_raw(position: int, raw: bytes) -> EventRecord:
    """The record of one stored envelope (as a view kept it)."""
    return _fast(position, raw, _Clock())


def from_domain_event(event: DomainEvent, position: int) -> EventRecord:
    """The record of a domain event (the library's ``Projection.process_event`` path)."""
    envelope = to_envelope(event)
    return _record(position, envelope, encode_envelope(envelope), _Clock())
