"""The event envelope: how a domain event is written to any store and to Kafka.

A stored event's ``state`` is a self-describing UTF-8 JSON object, the same bytes
in SQLite, in the Kafka record value and in ``GET /events``, written as RFC 8785
canonical JSON (so its keys are sorted)::

    {"actor": "...", "aggregate_id": "...", "aggregate_type": "Ticket",
     "aggregate_version": 1, "causation_id": null, "correlation_id": "...",
     "data": {...}, "envelope_version": 2, "event_id": "...", "hash": "...",
     "occurred_at": "2026-11-24T09:00:00Z", "prev_hash": "..." | null,
     "schema_version": 1, "type": "TicketOpened"}

``hash`` and ``prev_hash`` chain the events of one aggregate (see
engine.integrity.chain). ``envelope_version`` names the rule the hash was computed by;
envelopes written before it existed have none (and insertion-ordered keys), and read
and verify as they always did. Personal data fields in ``data`` are encrypted with the data
subject's key (see engine.integrity.personal); reading them after the key was
destroyed gives ``"[erased]"``.

The stored event's ``topic`` is the stable type name (``TicketOpened``), never a
Python module path, so the stream stays readable when code moves.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, cast
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    JSONTranscoder,
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
)

from engine.domain import events as _events  # noqa: F401  (registers every event type)
from engine.domain.base import EVENT_TYPES, DomainEvent
from engine.integrity.chain import ENVELOPE_VERSION, envelope_hash
from engine.integrity.jsonbytes import canonical_json, refuse_large_floats
from engine.integrity.keystore import KeyStore
from engine.integrity.personal import is_encrypted, seal, unseal

ENVELOPE_KEYS = (
    "event_id",
    "type",
    "schema_version",
    "aggregate_type",
    "aggregate_id",
    "aggregate_version",
    "occurred_at",
    "actor",
    "correlation_id",
    "causation_id",
    "data",
    "prev_hash",
    "hash",
)


def is_bookkeeping(type_name: str) -> bool:
    """Whether events of this type are the engine's bookkeeping, not the desk's facts."""
    cls = EVENT_TYPES.get(type_name)
    return cls is not None and cls.bookkeeping


class EnvelopeError(MapperDeserialisationError):
    """A stored record is not a readable event envelope (names what is wrong)."""


def to_envelope(
    event: DomainEvent, keys: KeyStore | None = None, prev_hash: str | None = None
) -> dict[str, Any]:
    """The event's envelope, personal fields sealed, chained to ``prev_hash``."""
    envelope = {
        "event_id": str(event.event_id),
        "type": event.type_name,
        "schema_version": event.schema_version,
        "aggregate_type": event.aggregate_type,
        "aggregate_id": str(event.originator_id),
        "aggregate_version": event.originator_version,
        "occurred_at": event.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "actor": event.actor,
        "correlation_id": str(event.correlation_id),
        "causation_id": str(event.causation_id) if event.causation_id else None,
        "data": seal(keys, event.data(), event.personal_fields, event.subject()),
        "prev_hash": prev_hash,
        "envelope_version": ENVELOPE_VERSION,
    }
    refuse_large_floats(envelope["data"])  # it would not read back as written
    envelope["hash"] = envelope_hash(envelope)
    return envelope


def encode_envelope(envelope: dict[str, Any]) -> bytes:
    """The stored bytes: RFC 8785 canonical JSON of the whole envelope."""
    return canonical_json(envelope)


def decode_envelope(state: bytes) -> dict[str, Any]:
    try:
        envelope = json.loads(state.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise EnvelopeError(f"record is not UTF-8 JSON: {e}") from None
    if not isinstance(envelope, dict):
        raise EnvelopeError("record is not a JSON object")
    missing = [key for key in ENVELOPE_KEYS if key not in envelope]
    if missing:
        raise EnvelopeError(f"envelope misses {', '.join(missing)}")
    return cast(dict[str, Any], envelope)


def from_envelope(envelope: dict[str, Any], keys: KeyStore | None = None) -> DomainEvent:
    type_name = envelope["type"]
    cls = EVENT_TYPES.get(type_name) if isinstance(type_name, str) else None
    if cls is None:
        raise EnvelopeError(f"unknown event type {type_name!r}")
    version = envelope["schema_version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise EnvelopeError(f"schema_version {version!r} is not an integer")
    if envelope["aggregate_type"] != cls.aggregate_type:
        raise EnvelopeError(
            f"{type_name} is an event of {cls.aggregate_type}, "
            f"not of {envelope['aggregate_type']!r}"
        )
    for key in ("hash", "prev_hash"):
        digest = envelope[key]
        if not (isinstance(digest, str) and _DIGEST.fullmatch(digest)):
            if not (key == "prev_hash" and digest is None):
                raise EnvelopeError(f"{key} {digest!r} is not a SHA-256 hex digest")
    data = envelope["data"]
    if not isinstance(data, dict):
        raise EnvelopeError("data is not a JSON object")
    for name, value in data.items():
        if is_encrypted(value) and name not in cls.personal_fields:
            raise EnvelopeError(f"{type_name}: {name} is sealed but is no personal field")
    try:
        data = cls.upcast(unseal(keys, dict(data)), version)
        fields = {
            "originator_id": envelope["aggregate_id"],
            "originator_version": envelope["aggregate_version"],
            "event_id": envelope["event_id"],
            "occurred_at": envelope["occurred_at"],
            "actor": envelope["actor"],
            "correlation_id": envelope["correlation_id"],
            "causation_id": envelope["causation_id"],
        }
        # Strict: no coercion ("1" or true for 1, a number for a time), because the
        # views read the envelope as written and must see what the application sees.
        event = cls.model_validate_json(json.dumps({**data, **fields}), strict=True)
    except (ValueError, TypeError, RecursionError) as e:  # ValidationError is a ValueError
        raise EnvelopeError(f"{type_name} v{version} does not validate: {e}") from None
    _check_notation(event, fields, data)
    return event


_DIGEST = re.compile(r"[0-9a-f]{64}")


def _instant(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _written_as(written: Any, dumped: Any) -> bool:
    """Whether ``written`` is ``dumped`` in its own notation (an object may leave out
    fields that have defaults)."""
    if isinstance(written, dict) and isinstance(dumped, dict):
        return all(k in dumped and _written_as(v, dumped[k]) for k, v in written.items())
    if isinstance(written, list) and isinstance(dumped, list) and len(written) == len(dumped):
        return all(_written_as(w, d) for w, d in zip(written, dumped, strict=True))
    return bool(written == dumped)


def _check_notation(event: DomainEvent, fields: dict[str, Any], data: dict[str, Any]) -> None:
    """Refuse values written in another notation than the event's own (a uuid in upper
    case or without dashes): the views key their rows by the text as written."""
    dumped = event.model_dump(mode="json")
    for name, written in [*fields.items(), *data.items()]:
        if name == "occurred_at":  # ISO 8601 with any UTC offset (the views convert it)
            if isinstance(written, str) and _instant(written) == event.occurred_at:
                continue
        elif name not in dumped or _written_as(written, dumped[name]):
            continue
        raise EnvelopeError(
            f"{event.type_name}: {name} {written!r} is not written as {dumped[name]!r}"
        )


class EnvelopeMapper(Mapper[UUID]):
    """eventsourcing mapper that writes and reads our JSON envelope.

    With a key store, personal fields are sealed on write and unsealed on read.
    ``to_stored_event`` alone cannot chain (it does not know the previous event):
    the application records through ``ChainedEventStore``, which calls ``stored``.
    """

    def __init__(self, keys: KeyStore | None = None) -> None:
        super().__init__(transcoder=JSONTranscoder())
        self.keys = keys

    def stored(self, event: DomainEvent, prev_hash: str | None) -> tuple[StoredEvent, str]:
        envelope = to_envelope(event, self.keys, prev_hash)
        stored = StoredEvent(
            originator_id=event.originator_id,
            originator_version=event.originator_version,
            topic=event.type_name,
            state=encode_envelope(envelope),
        )
        return stored, envelope["hash"]

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        event = cast(DomainEvent, domain_event)
        return self.stored(event, None)[0]

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        return self.decoded(stored_event)[0]

    def decoded(self, stored_event: StoredEvent) -> tuple[DomainEvent, str | None]:
        """The stored event and its envelope's ``hash`` (what the next event chains to)."""
        try:
            envelope = decode_envelope(stored_event.state)
            head = envelope["hash"]
            return from_envelope(envelope, self.keys), None if head is None else str(head)
        except EnvelopeError as e:
            raise EnvelopeError(
                f"event {stored_event.originator_id} v{stored_event.originator_version} "
                f"({stored_event.topic}): {e}"
            ) from None
