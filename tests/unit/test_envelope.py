"""The envelope mapper: every event round-trips; bad records fail with EnvelopeError only."""

from __future__ import annotations

import hashlib
import json
import types
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum
from typing import Any, Literal, Union, get_args, get_origin
from uuid import UUID

import pytest
import rfc8785
from annotated_types import Ge, Le
from eventsourcing.persistence import StoredEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import AwareDatetime, BaseModel, ValidationError

from engine.domain.base import EVENT_TYPES, DomainEvent
from engine.domain.calendar import BusinessCalendar
from engine.integrity.keystore import MemoryKeyStore
from engine.stores.envelope import ENVELOPE_KEYS, EnvelopeError, EnvelopeMapper

# --- strategies for any event, built from the models' own field types --------------------

# Envelopes are RFC 8785 JSON, whose integers are those a double holds exactly (I-JSON):
# an event holds no other (see test_an_integer_beyond_json_is_refused_not_written).
SAFE_INT = 2**53 - 1
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-SAFE_INT, max_value=SAFE_INT)
    | st.floats(min_value=-SAFE_INT, max_value=SAFE_INT)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
# Events are stamped in UTC by CommandMeta; whole-minute offsets must round-trip too.
OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
INSTANTS = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC) | OFFSETS
)


def _build(cls: type[BaseModel], values: dict[str, Any]) -> BaseModel | None:
    """A nested value object from drawn fields; its own rules (start before end, ...)
    may refuse the draw: then its defaults, or nothing."""
    try:
        return cls(**values)
    except ValidationError:
        try:
            return cls()
        except ValidationError:
            return None


def strategy_for(annotation: Any, metadata: list[Any]) -> st.SearchStrategy[Any]:
    """A strategy of valid values for one field; unknown types fail loudly, so a new
    event field type must be taught here before the round-trip test passes."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return st.one_of(*(strategy_for(arg, []) for arg in get_args(annotation)))
    if origin is Literal:
        return st.sampled_from(get_args(annotation))
    if origin is list or (origin is tuple and get_args(annotation)[1:] == (...,)):
        items = st.lists(strategy_for(get_args(annotation)[0], []), max_size=3)
        return items if origin is list else items.map(tuple)
    if origin is dict:
        key, value = get_args(annotation)
        if value is Any:
            return st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=4)
        return st.dictionaries(strategy_for(key, []), strategy_for(value, []), max_size=3)
    if annotation is BusinessCalendar:
        return st.sampled_from([BusinessCalendar(name="office"), BusinessCalendar.always_on()])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        parts = {
            n: strategy_for(i.annotation, list(i.metadata))
            for n, i in annotation.model_fields.items()
        }
        built = st.fixed_dictionaries(parts).map(lambda values: _build(annotation, values))
        return built.filter(lambda value: value is not None)
    if annotation is float:
        return st.floats(min_value=0.01, max_value=0.99, allow_nan=False)
    if annotation is timedelta:
        return st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400))
    if annotation is type(None):
        return st.none()
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return st.sampled_from(list(annotation))
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        low = next((int(m.ge) for m in metadata if isinstance(m, Ge)), -SAFE_INT)  # type: ignore[call-overload]
        high = next((int(m.le) for m in metadata if isinstance(m, Le)), SAFE_INT)  # type: ignore[call-overload]
        return st.integers(min_value=low, max_value=high)
    if annotation is str:
        return st.text(max_size=30)
    if annotation is UUID:
        return st.uuids()
    if annotation is AwareDatetime:
        return INSTANTS
    raise AssertionError(f"no strategy for field type {annotation!r}")


def events_of(cls: type[DomainEvent]) -> st.SearchStrategy[DomainEvent]:
    fields = {
        name: strategy_for(info.annotation, list(info.metadata))
        for name, info in cls.model_fields.items()
    }
    return st.fixed_dictionaries(fields).map(lambda values: cls(**values))


def sample_value(annotation: Any, metadata: list[Any]) -> Any:
    """One fixed valid value for a field (no hypothesis draw, so usable anywhere)."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        real = [arg for arg in get_args(annotation) if arg is not type(None)]
        return sample_value(real[0], [])
    if origin is Literal:
        return get_args(annotation)[0]
    if origin is list:
        return [sample_value(get_args(annotation)[0], [])]
    if origin is tuple:
        return ()
    if origin is dict:
        key, value = get_args(annotation)
        if value is Any:
            return {"status": 201, "ids": ["a", "b"]}
        return {sample_value(key, []): sample_value(value, [])}
    if annotation is BusinessCalendar:
        return BusinessCalendar(name="office")
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation(
            **{
                n: sample_value(i.annotation, list(i.metadata))
                for n, i in annotation.model_fields.items()
            }
        )
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return next(iter(annotation))
    return {
        bool: True,
        float: 0.75,
        timedelta: timedelta(hours=4),
        int: next((m.ge for m in metadata if isinstance(m, Ge)), 3),
        str: "sample text",
        UUID: UUID("00000000-0000-4000-8000-00000000000f"),
        AwareDatetime: datetime(2026, 11, 24, 9, 30, tzinfo=UTC),
    }[annotation]


def sample(name: str, **overrides: Any) -> DomainEvent:
    cls = EVENT_TYPES[name]
    values = {n: sample_value(i.annotation, list(i.metadata)) for n, i in cls.model_fields.items()}
    return cls(**{**values, **overrides})


ANY_EVENT = st.sampled_from(sorted(EVENT_TYPES)).flatmap(lambda name: events_of(EVENT_TYPES[name]))
MAPPERS = {"plain": EnvelopeMapper, "sealing": lambda: EnvelopeMapper(MemoryKeyStore())}


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_every_event_type_has_a_strategy_and_a_sample(name: str) -> None:
    events_of(EVENT_TYPES[name])
    assert type(sample(name)) is EVENT_TYPES[name]


@pytest.mark.parametrize("mapper_kind", sorted(MAPPERS))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(event=ANY_EVENT)
def test_every_event_round_trips_through_the_mapper(mapper_kind: str, event: DomainEvent) -> None:
    mapper = MAPPERS[mapper_kind]()
    stored = mapper.to_stored_event(event)

    # Check the record is addressed by the event and named by its stable type name.
    assert (stored.originator_id, stored.originator_version) == (
        event.originator_id,
        event.originator_version,
    )
    assert stored.topic == event.type_name
    assert event.type_name in EVENT_TYPES and EVENT_TYPES[event.type_name] is type(event)

    # Check it reads back to an equal event of the same class.
    back = mapper.to_domain_event(stored)
    assert type(back) is type(event)
    assert back == event

    # Check the bytes are RFC 8785 canonical JSON, and the hash is over the same rule.
    envelope = json.loads(stored.state)
    assert stored.state == rfc8785.dumps(envelope)
    body = {k: v for k, v in envelope.items() if k != "hash"}
    assert envelope["hash"] == hashlib.sha256(rfc8785.dumps(body)).hexdigest()


def test_topics_are_type_names_not_module_paths() -> None:
    for name, cls in EVENT_TYPES.items():
        assert "." not in name and name == cls.type_name
        assert cls.__module__ not in name


def test_the_envelope_is_self_describing_json() -> None:
    event = sample("TicketResolved")
    envelope = json.loads(EnvelopeMapper().to_stored_event(event).state)
    assert set(envelope) == {*ENVELOPE_KEYS, "envelope_version"}
    assert envelope["envelope_version"] == 2
    assert envelope["type"] == "TicketResolved"
    assert envelope["schema_version"] == 1
    assert envelope["aggregate_type"] == "Ticket"
    assert envelope["aggregate_id"] == str(event.originator_id)
    assert envelope["data"]["resolution_code"] == event.resolution_code  # type: ignore[attr-defined]


def test_a_whole_or_tiny_float_is_written_as_rfc8785_writes_it() -> None:
    # 1.0 and 1e-05 are where Python's json and RFC 8785 part: the bytes are RFC 8785's.
    event = sample("SlaPolicySet", at_risk_share=0.00001)
    state = EnvelopeMapper().to_stored_event(event).state
    assert b'"at_risk_share":0.00001' in state and state == rfc8785.dumps(json.loads(state))


def test_an_integer_beyond_json_is_refused_not_written() -> None:
    # RFC 8785 (I-JSON) has no integer a double cannot hold: refused, never written lossy.
    for number in (2**53, 2.0**53):  # a float that large would read back as an integer
        event = sample("CommandProcessed", response={"n": number})
        with pytest.raises(ValueError, match="9007199254740992"):
            EnvelopeMapper().to_stored_event(event)


def test_a_utc_instant_is_written_with_z() -> None:
    event = sample("TicketClosed", occurred_at=datetime(2026, 11, 24, 9, tzinfo=UTC))
    envelope = json.loads(EnvelopeMapper().to_stored_event(event).state)
    assert envelope["occurred_at"] == "2026-11-24T09:00:00Z"


def test_an_offset_with_seconds_round_trips() -> None:
    odd = timezone(timedelta(seconds=30))
    event = sample("TicketClosed", occurred_at=datetime(2026, 11, 24, 9, tzinfo=odd))
    mapper = EnvelopeMapper()
    assert mapper.to_domain_event(mapper.to_stored_event(event)) == event


def test_personal_fields_are_not_stored_in_clear_when_sealing() -> None:
    event = sample("TicketOpened", title="Printer on fire in room 4.12", requester_id="r1")
    assert b"Printer on fire" in EnvelopeMapper().to_stored_event(event).state
    assert b"Printer on fire" not in EnvelopeMapper(MemoryKeyStore()).to_stored_event(event).state


def test_a_sealed_value_is_read_only_in_a_personal_field() -> None:
    keys = MemoryKeyStore()
    sealed = json.loads(
        EnvelopeMapper(keys).to_stored_event(sample("TicketOpened", requester_id="r1")).state
    )
    assert "$enc" in sealed["data"]["title"]  # personal: sealed, and read back
    assert read_json_with(sealed, keys).title  # type: ignore[attr-defined]
    # The same sealed object in a field that is not personal is no event of ours.
    sealed["data"]["category"] = sealed["data"]["title"]
    with pytest.raises(EnvelopeError, match="category is sealed"):
        read_json_with(sealed, keys)


def read_json_with(envelope: dict[str, Any], keys: MemoryKeyStore) -> DomainEvent:
    record = StoredEvent(
        originator_id=UUID(envelope["aggregate_id"]),
        originator_version=envelope["aggregate_version"],
        topic=envelope["type"],
        state=json.dumps(envelope).encode(),
    )
    return EnvelopeMapper(keys).to_domain_event(record)  # type: ignore[return-value]


# --- reading bad records -----------------------------------------------------------


def valid_envelope(name: str = "TicketPended") -> dict[str, Any]:
    return json.loads(EnvelopeMapper().to_stored_event(sample(name)).state)  # type: ignore[no-any-return]


def read(state: bytes, mapper: EnvelopeMapper | None = None) -> DomainEvent:
    record = StoredEvent(
        originator_id=UUID("00000000-0000-4000-8000-000000000001"),
        originator_version=3,
        topic="TicketPended",
        state=state,
    )
    return (mapper or EnvelopeMapper()).to_domain_event(record)  # type: ignore[return-value]


def read_json(envelope: Any) -> DomainEvent:
    return read(json.dumps(envelope).encode())


@settings(max_examples=200)
@given(state=st.binary(max_size=200))
def test_arbitrary_bytes_fail_with_an_envelope_error(state: bytes) -> None:
    with pytest.raises(EnvelopeError):
        read(state)


@pytest.mark.parametrize(
    "state",
    [b"", b"\xff\xfe", b"{", b"null", b"[]", b'"TicketPended"', b"42", b"\xef\xbb\xbf{}"],
)
def test_malformed_bytes_fail_with_an_envelope_error(state: bytes) -> None:
    with pytest.raises(EnvelopeError, match="ticket|record|envelope|JSON"):
        read(state)


def test_deeply_nested_json_fails_with_an_envelope_error() -> None:
    with pytest.raises(EnvelopeError):
        read(b"[" * 100_000)


def test_an_oversized_number_fails_with_an_envelope_error() -> None:
    envelope = valid_envelope()
    envelope["aggregate_version"] = "BIG"
    state = json.dumps(envelope).replace('"BIG"', "9" * 5000).encode()
    with pytest.raises(EnvelopeError):
        read(state)


@pytest.mark.parametrize("key", ENVELOPE_KEYS)
def test_a_missing_envelope_key_is_named(key: str) -> None:
    envelope = valid_envelope()
    del envelope[key]
    with pytest.raises(EnvelopeError, match=f"envelope misses {key}"):
        read_json(envelope)


@pytest.mark.parametrize(
    "type_name", ["NoSuchEvent", "engine.domain.ticket.TicketPended", 42, None]
)
def test_an_unknown_type_is_named(type_name: Any) -> None:
    envelope = valid_envelope()
    envelope["type"] = type_name
    with pytest.raises(EnvelopeError, match="unknown event type"):
        read_json(envelope)


@pytest.mark.parametrize("version", [2, 99, 0])
def test_another_schema_version_is_refused(version: int) -> None:
    envelope = valid_envelope()
    envelope["schema_version"] = version
    with pytest.raises(EnvelopeError, match=f"schema version {version} is not supported"):
        read_json(envelope)


@pytest.mark.parametrize(
    "version",
    [
        "1",
        1.0,
        None,
        True,
    ],
)
def test_a_schema_version_must_be_an_integer(version: Any) -> None:
    envelope = valid_envelope()
    envelope["schema_version"] = version
    with pytest.raises(EnvelopeError, match="schema_version"):
        read_json(envelope)


@pytest.mark.parametrize(
    ("name", "field"),
    [
        (name, field)
        for name, cls in sorted(EVENT_TYPES.items())
        for field, info in cls.model_fields.items()
        if field not in DomainEvent.ENVELOPE_FIELDS and info.is_required()
    ],
)
def test_a_missing_data_field_is_refused(name: str, field: str) -> None:
    envelope = valid_envelope(name)
    del envelope["data"][field]
    with pytest.raises(EnvelopeError, match=f"{name} v1 does not validate"):
        read_json(envelope)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("data", []),
        ("data", "reason"),
        ("aggregate_id", "not-a-uuid"),
        ("aggregate_version", "three"),
        ("occurred_at", "yesterday"),
        ("occurred_at", "2026-11-24T09:00:00"),  # naive: not an aware instant
        ("correlation_id", None),
        ("event_id", 7),
    ],
)
def test_a_malformed_envelope_value_is_refused(key: str, value: Any) -> None:
    envelope = valid_envelope()
    envelope[key] = value
    with pytest.raises(EnvelopeError):
        read_json(envelope)


def test_an_unexpected_data_field_is_refused() -> None:
    envelope = valid_envelope()
    envelope["data"]["surprise"] = True
    with pytest.raises(EnvelopeError, match="surprise"):
        read_json(envelope)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(EVENT_TYPES)),
    key=st.sampled_from(ENVELOPE_KEYS),
    value=JSON_VALUES,
    data=st.data(),
)
def test_any_corrupted_value_reads_or_fails_with_an_envelope_error(
    name: str, key: str, value: Any, data: st.DataObject
) -> None:
    envelope = valid_envelope(name)
    if key == "data" and envelope["data"] and data.draw(st.booleans(), label="corrupt a field"):
        field = data.draw(st.sampled_from(sorted(envelope["data"])), label="field")
        envelope["data"][field] = value
    else:
        envelope[key] = value
    try:
        read_json(envelope)
    except EnvelopeError:
        pass


@pytest.mark.parametrize("part", ["iv", "ct"])
def test_a_malformed_sealed_field_fails_with_an_envelope_error(part: str) -> None:
    keys = MemoryKeyStore()
    mapper = EnvelopeMapper(keys)
    event = sample("TicketOpened", requester_id="r1")
    envelope = json.loads(mapper.to_stored_event(event).state)
    envelope["data"]["title"][part] = 12345
    with pytest.raises(EnvelopeError):
        read(json.dumps(envelope).encode(), mapper)
