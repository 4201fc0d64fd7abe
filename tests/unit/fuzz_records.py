"""Hypothesis strategies that generate malformed and foreign event records, and the
contract every decoder of a stored record is held to (used by the decoder fuzz tests
and by the Kafka foreign-records test).

A generated record starts from a real event (a desk's history, written by the
envelope mapper) and breaks it: arbitrary bytes, bytes that are not UTF-8 or not JSON,
JSON of the wrong shape (scalars, lists, junk objects, deep nesting), or a real
envelope with fields deleted, retyped or replaced (unknown type, schema versions that
are not this engine's, bad uuids and timestamps, data fields missing, mistyped or
extra, hash mismatches, huge values). Some replacements happen to be valid (``None``
where a field is optional, another string for a title): the contract allows those, as
long as the decoder reads back exactly what was written.
"""

from __future__ import annotations

import functools
import json
import random
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification
from eventsourcing.popo import POPOApplicationRecorder
from hypothesis import strategies as st

from engine.domain.base import EVENT_TYPES, DomainError, DomainEvent
from engine.integrity.personal import is_encrypted
from engine.projections import Views
from engine.projections.kit.runner import ignored_types
from engine.stores.envelope import ENVELOPE_KEYS, EnvelopeMapper, to_envelope
from engine.stores.kafka.codec import EventRow, event_record
from tests.support.simulation import Desk

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
UUID_KEYS = ("event_id", "aggregate_id", "correlation_id", "causation_id")


@functools.cache
def history() -> tuple[Notification, ...]:
    """A valid log: a desk's setup and a few dozen commands (refused ones record
    nothing), with its SLA clocks: about 200 events of most types the views read."""
    desk = Desk(POPOApplicationRecorder(), T0, seed=5, sla=True)
    desk.setup()
    rng = random.Random(5)
    for _ in range(80):
        desk.advance(rng.randrange(5, 600))
        try:
            desk.play(rng.randrange(10_000), rng.randrange(10_000))
        except DomainError:
            continue
    desk.flush()
    # Recorded again as the application records them: chained per aggregate.
    recorder, mapper, heads = POPOApplicationRecorder(), EnvelopeMapper(), {}
    for event in desk.recorded:
        stored, heads[event.originator_id] = mapper.stored(event, heads.get(event.originator_id))
        recorder.insert_events([stored])
    return tuple(recorder.select_notifications(start=1, limit=100_000))


@functools.cache
def topics_no_view_reads() -> frozenset[str]:
    """Known event types no view reads: the views' runner only checks that their records
    are envelopes of the type their topic names (``records.check_type``)."""
    with tempfile.TemporaryDirectory() as tmp:
        views = Views(POPOApplicationRecorder(), Path(tmp))
        try:
            return ignored_types(list(views._live.values()))
        finally:
            views.close()


@dataclass(frozen=True)
class Malformed:
    """A generated record: ``state`` as stored (the Kafka record value), the stored
    ``topic`` (the Kafka ``type`` header), how it was made (``kind``), and whether no
    decoder may accept it (``must_fail``; otherwise a decoder may read it, exactly)."""

    kind: str
    state: bytes
    topic: str
    must_fail: bool

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))

    def __repr__(self) -> str:  # hypothesis prints the falsifying example with this
        shown = self.state if len(self.state) < 600 else self.state[:600] + b"..."
        return (
            f"Malformed({self.kind!r}, topic={self.topic!r}, must_fail={self.must_fail}, {shown!r})"
        )


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# --- values --------------------------------------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
HUGE_TEXT = st.integers(10_000, 200_000).map(lambda n: "x" * n)


def deep(depth: int, kind: str) -> Any:
    """A value nested ``depth`` levels (lists or objects)."""
    value: Any = 0
    for _ in range(depth):
        value = [value] if kind == "list" else {"a": value}
    return value


DEEP_VALUES = st.builds(deep, st.integers(50, 900), st.sampled_from(["list", "dict"]))


def _not_uuid(text: str) -> bool:
    try:
        UUID(text)
    except ValueError:
        return True
    return False


def _naive_or_junk_time(text: str) -> bool:
    """Not a time with a zone in ISO 8601 (nor a number: a lenient parser reads those)."""
    if not _not_number(text):
        return False
    try:
        return datetime.fromisoformat(text).tzinfo is None
    except ValueError:
        return True


BAD_UUID_TEXT = st.text(max_size=40).filter(_not_uuid)
BAD_TIME_TEXT = st.one_of(
    st.text(max_size=30),
    st.datetimes(timezones=st.none()).map(lambda d: d.isoformat()),  # no time zone
    st.dates().map(lambda d: d.isoformat()),
    st.just("2026-02-30T09:00:00Z"),
    st.just("2026-13-01T09:00:00Z"),
).filter(_naive_or_junk_time)
# The same instant as written, in another notation: a decoder may read it (exactly).
OTHER_NOTATION_TIME = st.sampled_from(["+00:00", "+01:00", "-05:30"])


# Values of the wrong JSON type for a field of each kind, none of which a lenient
# parser would turn into a right value. The "lax" ones are what it would (a number for
# a timestamp, "1" or true for an integer, a uuid in another notation): the contract
# refuses those too, and so does the mapper (it validates strictly).
def _not_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return True
    return False


NOT_TEXT = st.one_of(
    st.booleans(), st.lists(SCALARS, max_size=2),
    st.dictionaries(st.text(max_size=5), SCALARS, max_size=2),
)  # fmt: skip
NOT_INT = st.one_of(
    st.text(max_size=10).filter(_not_number),
    st.floats(allow_nan=False).filter(lambda f: not f.is_integer()),
    st.lists(SCALARS, max_size=2), st.dictionaries(st.text(max_size=5), SCALARS, max_size=2),
    st.none(),
)  # fmt: skip
NOT_COERCIBLE = st.none() | st.lists(st.none() | st.booleans(), min_size=1, max_size=3)
LAX_INT = st.one_of(
    st.booleans(), st.integers(-5, 5).map(float), st.integers(-5, 99).map(str)
)  # fmt: skip
LAX_TIME = st.one_of(st.integers(0, 2**32), st.floats(0, 2**32, allow_nan=False)).flatmap(
    lambda number: st.sampled_from([number, str(number)])
)
LAX_UUID = st.uuids().flatmap(
    lambda u: st.sampled_from([str(u).upper(), u.hex, "{" + str(u) + "}", u.urn])
)


# --- records -------------------------------------------------------------------------------


def original() -> st.SearchStrategy[Notification]:
    return st.sampled_from(history())


def _envelope(n: Notification) -> dict[str, Any]:
    env: dict[str, Any] = json.loads(n.state)
    return env


@st.composite
def _garbage(draw: st.DrawFn) -> Malformed:
    n = draw(original())
    how = draw(st.sampled_from(["binary", "non-utf8", "truncated", "trailing", "shape", "deep"]))
    if how == "binary":
        state = draw(st.binary(max_size=300))
    elif how == "non-utf8":
        at = draw(st.integers(0, len(n.state)))
        bad = draw(
            st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"])
        )
        state = n.state[:at] + bad + n.state[at:]
    elif how == "truncated":
        state = n.state[: draw(st.integers(0, len(n.state) - 1))]
    elif how == "trailing":
        junk = draw(st.binary(min_size=1, max_size=20).filter(lambda b: b.strip() != b""))
        state = n.state + junk
    elif how == "shape":
        value = draw(
            JSON_VALUES.filter(lambda v: not isinstance(v, dict))
            | st.dictionaries(st.text(max_size=12), JSON_VALUES, max_size=8)
        )
        state = dumps(value)
    else:
        depth = draw(st.integers(500, 60_000))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        state = opener * depth + b"0" + closer * depth
    return Malformed(how, state, n.topic, must_fail=True)


def _data_fields(type_name: str) -> dict[str, bool]:
    """The event type's data fields, each with whether it is required."""
    cls = EVENT_TYPES[type_name]
    return {
        name: info.is_required()
        for name, info in cls.model_fields.items()
        if name not in DomainEvent.ENVELOPE_FIELDS
    }


BROKEN = (
    "delete", "retype", "unknown-type", "schema-version", "bad-uuid", "bad-time", "other-time",
    "data-delete", "data-retype", "data-extra", "data-not-object", "hash", "huge", "deep",
    "extra-key",
)  # fmt: skip
LAX = ("lax-int", "lax-time", "lax-uuid", "aggregate-type", "hash-type", "data-lax")
# Damage the views' decoder refuses under a topic a view reads (records.py).
VIEWS_CHECK = (
    "delete-read", "unknown-type", "schema-version", "bad-time-not-empty", "other-time", "hash",
)  # fmt: skip
UNREAD_KEYS = ("aggregate_type", "hash", "prev_hash")
READ_KEYS = ("type", "schema_version", "aggregate_id", "occurred_at", "data")


@st.composite
def _broken_envelope(draw: st.DrawFn, kinds: tuple[str, ...], max_steps: int) -> Malformed:
    """A real envelope with one to ``max_steps`` of its fields broken in ways ``kinds``."""
    n = draw(original())
    env = _envelope(n)
    done: list[str] = []
    must_fail = False
    for _ in range(draw(st.integers(1, max_steps))):
        how = draw(st.sampled_from(kinds))
        done.append(how)
        data = env.get("data")
        if how in ("delete", "delete-read"):
            candidates = ENVELOPE_KEYS if how == "delete" else READ_KEYS
            keys = draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=4, unique=True))
            for key in keys:
                env.pop(key, None)
            must_fail = True
        elif how == "retype":
            # (aggregate_type and the hashes: see LAX)
            key = draw(st.sampled_from([k for k in ENVELOPE_KEYS if k not in UNREAD_KEYS]))
            if key in ("aggregate_version", "schema_version"):
                env[key] = draw(NOT_INT)
            elif key == "data":
                env[key] = draw(
                    NOT_TEXT.filter(lambda v: not isinstance(v, dict)) | st.text(max_size=5)
                )
            else:
                env[key] = draw(NOT_TEXT | (st.none() if key != "causation_id" else NOT_TEXT))
            must_fail = True
        elif how == "unknown-type":
            env["type"] = draw(st.text(max_size=30).filter(lambda t: t not in EVENT_TYPES))
            must_fail = True
        elif how == "schema-version":
            env["schema_version"] = draw(
                st.integers(2, 10**6) | st.integers(-(10**6), 0) | st.integers(2**63, 2**70)
            )
            must_fail = True
        elif how == "bad-uuid":
            env[draw(st.sampled_from(UUID_KEYS))] = draw(BAD_UUID_TEXT)
            must_fail = True
        elif how in ("bad-time", "bad-time-not-empty"):
            env["occurred_at"] = draw(
                BAD_TIME_TEXT.filter(lambda t, empty=how == "bad-time": t or empty)
            )
            must_fail = True
        elif how == "other-time" and isinstance(env.get("occurred_at"), str):
            try:
                instant = datetime.fromisoformat(env["occurred_at"])
                offset = datetime.fromisoformat("2026-01-01T00:00:00" + draw(OTHER_NOTATION_TIME))
                if instant.tzinfo is not None:  # (a time broken by an earlier step stays so)
                    env["occurred_at"] = instant.astimezone(offset.tzinfo).isoformat()
            except ValueError:
                pass  # already broken by an earlier step
        elif how == "data-delete" and isinstance(data, dict) and data:
            keys = draw(
                st.lists(st.sampled_from(sorted(data)), min_size=1, max_size=3, unique=True)
            )
            for key in keys:
                del data[key]
        elif how in ("data-retype", "data-lax") and isinstance(data, dict) and data:
            # A wrong type, or a valid value (None for an optional field): read exactly.
            # Only "data-lax" draws strings and numbers, which a lenient parser coerces.
            key = draw(st.sampled_from(sorted(data)))
            data[key] = draw(JSON_VALUES if how == "data-lax" else NOT_COERCIBLE)
        elif how == "data-extra" and isinstance(data, dict):
            key = draw(
                st.text(min_size=1, max_size=12).filter(
                    lambda k, taken=frozenset(data): k not in taken
                )
            )
            data[key] = draw(JSON_VALUES)
        elif how == "data-not-object":
            env["data"] = draw(JSON_VALUES.filter(lambda v: not isinstance(v, dict)))
            must_fail = True
        elif how == "hash" and ("hash" in env or "prev_hash" in env):
            # The chain verifier finds a broken link; decoders do not check the chain.
            key = draw(st.sampled_from([k for k in ("hash", "prev_hash") if k in env]))
            env[key] = draw(st.text("0123456789abcdef", min_size=64, max_size=64))
        elif how == "huge" and isinstance(data, dict) and data:
            data[draw(st.sampled_from(sorted(data)))] = draw(HUGE_TEXT)
        elif how == "deep":
            target = data if isinstance(data, dict) and data and draw(st.booleans()) else env
            key = draw(st.sampled_from(sorted(set(target) - set(UNREAD_KEYS))))
            target[key] = draw(DEEP_VALUES)
            must_fail = must_fail or (target is env and key in ENVELOPE_KEYS)
        elif how == "extra-key":
            key = draw(st.text(min_size=1, max_size=12).filter(lambda k: k not in ENVELOPE_KEYS))
            env[key] = draw(JSON_VALUES)  # unknown top-level keys: ignored or refused
        elif how == "lax-int":
            env["aggregate_version"] = draw(LAX_INT)
            must_fail = True
        elif how == "lax-time":
            env[draw(st.sampled_from(["occurred_at", *UUID_KEYS]))] = draw(LAX_TIME)
            must_fail = True
        elif how == "lax-uuid":
            env[draw(st.sampled_from(UUID_KEYS))] = draw(LAX_UUID)
            must_fail = True
        elif how == "aggregate-type":
            env["aggregate_type"] = draw(
                NOT_TEXT
                | st.sampled_from(["Ticket", "Assignment", "Escalation", "Agent", "Nope"]).filter(
                    lambda t: t != env.get("aggregate_type")
                )
            )
            must_fail = True
        elif how == "hash-type":
            env[draw(st.sampled_from(["hash", "prev_hash"]))] = draw(NOT_TEXT)
            must_fail = True
    data, type_name = env.get("data"), env.get("type")
    if isinstance(data, dict) and isinstance(type_name, str) and type_name in EVENT_TYPES:
        fields = _data_fields(type_name)
        missing = {name for name, required in fields.items() if required} - set(data)
        must_fail = must_fail or bool(missing) or bool(set(data) - set(fields))
    return Malformed("+".join(done), dumps(env), n.topic, must_fail)


def malformed(kinds: tuple[str, ...] = BROKEN, max_steps: int = 3) -> st.SearchStrategy[Malformed]:
    """Generated bad records: garbage, or real envelopes broken in ways ``kinds``."""
    broken = _broken_envelope(kinds, max_steps)
    return st.one_of(_garbage(), broken, broken)


def _same(written: Any, expected: Any) -> bool:
    """Equal JSON values, of the same JSON types (a number is a number: JSON has one)."""
    if isinstance(expected, float) and type(written) is int:
        return float(written) == expected
    if isinstance(expected, dict):  # (a nested object may leave out defaulted fields)
        return (
            isinstance(written, dict)
            and written.keys() <= expected.keys()
            and all(_same(v, expected[k]) for k, v in written.items())
        )
    if isinstance(expected, list):
        return (
            isinstance(written, list)
            and len(written) == len(expected)
            and all(_same(w, e) for w, e in zip(written, expected, strict=True))
        )
    return type(written) is type(expected) and written == expected


def exactly_as_written(event: DomainEvent, state: bytes) -> str | None:
    """Why ``event`` is not exactly what the envelope ``state`` says (None if it is).

    Everything the event carries must be written there in the envelope's own notation:
    no coercion ("1" for 1, a number for a timestamp, a uuid in another notation), the
    event's own aggregate type, data without extra keys; a data field missing from the
    envelope must be one with a default; a timestamp may use any UTC offset. ``hash``
    and ``prev_hash`` must be hex digests (their values are the chain verifier's
    business)."""
    written = json.loads(state)
    expected = to_envelope(event)
    for key in ("hash", "prev_hash"):
        value = written.get(key)
        if not (isinstance(value, str) and len(value) == 64) and not (
            key == "prev_hash" and value is None
        ):
            return f"{key} {value!r} is no digest"
    try:
        same_time = datetime.fromisoformat(written.get("occurred_at")) == event.occurred_at
    except (TypeError, ValueError):
        same_time = False
    if not same_time:
        return f"occurred_at {written.get('occurred_at')!r} read as {event.occurred_at}"
    for key in ENVELOPE_KEYS:
        if key in ("hash", "prev_hash", "occurred_at", "data"):
            continue
        if key not in written or not _same(written[key], expected[key]):
            return f"{key} {written.get(key, '(missing)')!r} read as {expected[key]!r}"
    data, fields = written.get("data"), _data_fields(event.type_name)
    if not isinstance(data, dict):
        return f"data {data!r} read as {expected['data']!r}"
    for key, value in expected["data"].items():
        if key not in data:
            if fields[key]:
                return f"data.{key} is missing but read as {value!r}"
            continue
        if is_encrypted(data[key]) and key in event.personal_fields:
            continue  # sealed personal data reads as erased without the key
        if not _same(data[key], value):
            return f"data.{key} {data[key]!r} read as {value!r}"
    extra = set(data) - set(expected["data"])
    return f"data has extra keys {sorted(extra)}" if extra else None


# --- Kafka records -------------------------------------------------------------------------


@dataclass
class KafkaRecord:
    """What a consumer reads: the fields ``row_from_record`` and the tailer use."""

    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


HEADER_NAMES = st.sampled_from(["type", "aggregate_id", "aggregate_version", "schema_version"])
HEADER_VALUES = st.one_of(
    st.none(),
    st.binary(max_size=30),
    st.integers(-(2**70), 2**70).map(lambda i: str(i).encode()),
    st.sampled_from(
        [b"1", b" 7 ", b"+3", b"1_000", b"0", b"-1", b"\xd9\xa3", b"1e3", b"Ticket"]
        + [str(2**63 - 1).encode(), str(2**63).encode(), b"9" * 30]  # SQLite's limit
    ),
)
HEADERS = st.lists(st.tuples(HEADER_NAMES | st.text(max_size=10), HEADER_VALUES), max_size=6)
KEYS = st.none() | st.binary(max_size=40) | st.uuids().map(lambda u: str(u).encode())
VALUES = st.none() | st.binary(max_size=60) | malformed().map(lambda r: r.state)
ROWS = st.builds(  # what the writer puts on the topic
    EventRow,
    originator_id=st.uuids().map(str) | st.text(min_size=1, max_size=20),
    originator_version=st.integers(0, 2**63 - 1),
    topic=st.text(min_size=1, max_size=30),
    state=st.binary(max_size=60) | malformed().map(lambda r: r.state),
)


@st.composite
def almost_ours(draw: st.DrawFn) -> KafkaRecord:
    """One of our records with a header dropped, replaced, repeated or added, or its key
    or value replaced."""
    key, value, headers = event_record(draw(ROWS))
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["drop", "replace", "add", "key", "value"]))
        if how == "drop" and headers:
            del headers[draw(st.integers(0, len(headers) - 1))]
        elif how == "replace" and headers:
            i = draw(st.integers(0, len(headers) - 1))
            headers[i] = (headers[i][0], draw(HEADER_VALUES))
        elif how == "add":
            headers.append((draw(HEADER_NAMES), draw(HEADER_VALUES)))
        elif how == "key":
            key = draw(KEYS)
        elif how == "value":
            value = draw(VALUES)
    return KafkaRecord(0, key, value, headers)


FOREIGN = st.builds(KafkaRecord, st.just(0), KEYS, VALUES, HEADERS) | almost_ours()
