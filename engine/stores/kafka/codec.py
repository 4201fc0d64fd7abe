"""How stored events and the writer's messages look on Kafka.

An event record is what analytics consumers read: value = the stored event's state,
verbatim; key = the aggregate id (UTF-8); headers ``type`` (the stored event's topic),
``aggregate_id``, ``aggregate_version`` (decimal) and ``schema_version`` (decimal, when
the state is a JSON object carrying an integer ``schema_version``). When the state is
an envelope (engine.stores.envelope), also ``record_kind`` (``domain``, or
``bookkeeping`` for the engine's own records, which a consumer may skip unparsed) and
the CloudEvents Kafka binding's headers in binary content mode (``ce_specversion``
``1.0``, ``ce_id`` = event_id, ``ce_source`` = ``/ticketing/<aggregate_type>/<aggregate
id>``, ``ce_type`` = the type, ``ce_time`` = occurred_at, ``ce_dataschema`` = the JSON
Schema's ``$id``, ``content-type`` ``application/json``): the CloudEvent's data is the
whole envelope.

The coordination messages (forwarded appends, replies, heartbeats, writer claims) are
small JSON objects on auxiliary topics (``<topic>.__leases``, ``.__requests``,
``.__replies``); they are our protocol, not a public stream. Each carries the header
``ticketing.internal`` (``lease``, ``request`` or ``reply``), which no event record has,
so that no consumer can take one for an event.
"""

from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from eventsourcing.persistence import DataError, StoredEvent

from engine.stores.envelope import is_bookkeeping

HEADER_TYPE = "type"
HEADER_AGGREGATE_ID = "aggregate_id"
HEADER_AGGREGATE_VERSION = "aggregate_version"
HEADER_SCHEMA_VERSION = "schema_version"
HEADER_RECORD_KIND = "record_kind"
RECORD_KIND_DOMAIN = b"domain"
RECORD_KIND_BOOKKEEPING = b"bookkeeping"
CLOUDEVENTS_SPECVERSION = b"1.0"
CLOUDEVENTS_SOURCE = "/ticketing/{aggregate_type}/{aggregate_id}"
CLOUDEVENTS_DATASCHEMA = "urn:ticketing:event:{type}:v{schema_version}"  # as the schemas' $id

Headers = list[tuple[str, bytes]]

HEADER_INTERNAL = "ticketing.internal"
LEASE_HEADERS: Headers = [(HEADER_INTERNAL, b"lease")]
REQUEST_HEADERS: Headers = [(HEADER_INTERNAL, b"request")]
REPLY_HEADERS: Headers = [(HEADER_INTERNAL, b"reply")]


class RecordFormatError(ValueError):
    """A record on a topic is not in the format this module writes."""


@dataclass(frozen=True)
class EventRow:
    """A stored event as it travels between the writer, the topic and the cache:
    the originator id is the record key, as text."""

    originator_id: str
    originator_version: int
    topic: str
    state: bytes


def to_row(event: StoredEvent, originator_id_type: Literal["uuid", "text"]) -> EventRow:
    """Normalise a stored event; raises ``DataError`` for an id of the wrong kind."""
    oid = event.originator_id
    if originator_id_type == "uuid" and not isinstance(oid, UUID):
        try:
            oid = UUID(str(oid))
        except ValueError:
            raise DataError(
                f"originator id {oid!r} is not a UUID (ORIGINATOR_ID_TYPE=uuid)"
            ) from None
    if not isinstance(event.state, bytes):
        raise DataError("stored event state must be bytes")
    return EventRow(str(oid), int(event.originator_version), event.topic, event.state)


def from_row(row: EventRow, originator_id_type: Literal["uuid", "text"]) -> StoredEvent:
    oid: UUID | str = UUID(row.originator_id) if originator_id_type == "uuid" else row.originator_id
    return StoredEvent(oid, row.originator_version, row.topic, row.state)


def _json_object(state: bytes) -> dict[str, Any] | None:
    """The state as a JSON object, else None (never raises)."""
    if not state.startswith(b"{"):
        return None
    try:
        decoded = json.loads(state)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    return decoded if isinstance(decoded, dict) else None


def _schema_version(decoded: dict[str, Any] | None) -> int | None:
    version = None if decoded is None else decoded.get("schema_version")
    return version if isinstance(version, int) and not isinstance(version, bool) else None


def schema_version_of(state: bytes) -> int | None:
    """The integer ``schema_version`` of a JSON object state, else None (never raises)."""
    return _schema_version(_json_object(state))


def _envelope_headers(row: EventRow, envelope: dict[str, Any], schema_version: int) -> Headers:
    """``record_kind`` and the CloudEvents headers of an envelope, or none if it is not
    one as the engine writes it (never raises)."""
    fields = [envelope.get(k) for k in ("event_id", "occurred_at", "aggregate_type")]
    texts = [v for v in fields if isinstance(v, str) and v]
    if len(texts) != len(fields):
        return []
    event_id, occurred_at, aggregate_type = texts
    try:
        if datetime.fromisoformat(occurred_at).tzinfo is None or "T" not in occurred_at:
            return []  # ce_time must be an RFC 3339 instant
        source = CLOUDEVENTS_SOURCE.format(
            aggregate_type=aggregate_type, aggregate_id=row.originator_id
        )
        schema = CLOUDEVENTS_DATASCHEMA.format(type=row.topic, schema_version=schema_version)
        return [
            (HEADER_RECORD_KIND, RECORD_KIND_BOOKKEEPING if is_bookkeeping(row.topic)
             else RECORD_KIND_DOMAIN),
            ("ce_specversion", CLOUDEVENTS_SPECVERSION),
            ("ce_id", event_id.encode("utf-8")),
            ("ce_source", source.encode("utf-8")),
            ("ce_type", row.topic.encode("utf-8")),
            ("ce_time", occurred_at.encode("utf-8")),
            ("ce_dataschema", schema.encode("utf-8")),
            ("content-type", b"application/json"),
        ]  # fmt: skip
    except ValueError:  # not an instant; a lone surrogate (UnicodeEncodeError)
        return []


def event_record(row: EventRow) -> tuple[bytes, bytes, Headers]:
    """Key, value and headers of the Kafka record for one event."""
    headers: Headers = [
        (HEADER_TYPE, row.topic.encode("utf-8")),
        (HEADER_AGGREGATE_ID, row.originator_id.encode("utf-8")),
        (HEADER_AGGREGATE_VERSION, str(row.originator_version).encode("ascii")),
    ]
    decoded = _json_object(row.state)
    schema_version = _schema_version(decoded)
    if decoded is not None and schema_version is not None:
        headers.append((HEADER_SCHEMA_VERSION, str(schema_version).encode("ascii")))
        headers.extend(_envelope_headers(row, decoded, schema_version))
    return row.originator_id.encode("utf-8"), row.state, headers


def record_size(row: EventRow) -> int:
    """Bytes an event record takes in a produce request (an upper bound): its key,
    value and headers, with room for each header's and the record's length prefixes."""
    key, value, headers = event_record(row)
    return len(key) + len(value) + sum(len(n) + len(v) + 10 for n, v in headers) + 64


def row_from_record(
    key: bytes | None,
    value: bytes | None,
    headers: Any,
    originator_id_type: Literal["uuid", "text"] = "text",
) -> EventRow:
    """Read an event record back; raises ``RecordFormatError`` for a foreign record:
    no key or value, a key that is not UTF-8 (with ``originator_id_type="uuid"``: not
    a UUID as this module writes it), no ``type`` header in UTF-8, or no
    ``aggregate_version`` header that is a decimal integer from 0 below 2**63 (what
    the cache can hold). The caller names the record's offset."""
    if key is None or value is None:
        raise RecordFormatError(f"record has no {'key' if key is None else 'value'}")
    try:
        found = {str(name): bytes(data) for name, data in (headers or ()) if data is not None}
    except (TypeError, ValueError) as e:
        raise RecordFormatError(f"record headers are unreadable: {e}") from None
    try:
        originator_id = key.decode("utf-8")
    except UnicodeDecodeError:
        raise RecordFormatError(f"record key {key[:60]!r} is not UTF-8") from None
    if originator_id_type == "uuid" and not _is_uuid_text(originator_id):
        raise RecordFormatError(f"record key {originator_id[:60]!r} is not a UUID")
    try:
        topic = found[HEADER_TYPE].decode("utf-8")
    except (KeyError, UnicodeDecodeError):
        raise RecordFormatError(f"record lacks a readable {HEADER_TYPE!r} header") from None
    version = found.get(HEADER_AGGREGATE_VERSION, b"")
    if not _VERSION.fullmatch(version) or int(version) > MAX_VERSION:
        raise RecordFormatError(
            f"record lacks a readable {HEADER_AGGREGATE_VERSION!r} header "
            f"(a decimal integer from 0 to {MAX_VERSION}): {version[:30]!r}"
        )
    if not topic:
        raise RecordFormatError(f"record has an empty {HEADER_TYPE!r} header")
    return EventRow(originator_id, int(version), topic, bytes(value))


MAX_VERSION = 2**63 - 1  # SQLite's largest integer: the cache holds versions as such
# 0 is allowed: the recorder port takes any non-negative version (eventsourcing's own
# conformance tests write version 0), and what the writer records the tailer must read.
_VERSION = re.compile(rb"0|[1-9][0-9]{0,18}")


def _is_uuid_text(text: str) -> bool:
    """Whether ``text`` is a UUID written as ``str(UUID(...))`` writes it."""
    try:
        return str(UUID(text)) == text
    except ValueError:
        return False


@dataclass(frozen=True)
class AppendRequest:
    """An append forwarded to the writer. ``expires_at`` is wall-clock time after
    which the writer must not start it (the caller has given up by then). ``free``: the
    (aggregate id, version) pairs that must not be taken when it commits (the append's
    conditions, ``engine.stores.conditions``)."""

    request_id: str
    reply_to: str
    expires_at: float
    events: list[EventRow] = field(default_factory=list)
    free: list[tuple[str, int]] = field(default_factory=list)

    def encode(self) -> bytes:
        return _dump(
            {
                "request_id": self.request_id,
                "reply_to": self.reply_to,
                "expires_at": self.expires_at,
                "events": [
                    [e.originator_id, e.originator_version, e.topic, _b64(e.state)]
                    for e in self.events
                ],
                **({"free": [[o, v] for o, v in self.free]} if self.free else {}),
            }
        )

    @classmethod
    def decode(cls, value: bytes) -> AppendRequest:
        data = _load(value)
        try:
            expires_at = float(data["expires_at"])
            if not math.isfinite(expires_at):
                raise ValueError(f"expires_at {expires_at} is not a finite time")
            return cls(
                request_id=str(data["request_id"]),
                reply_to=str(data["reply_to"]),
                expires_at=expires_at,
                events=[
                    EventRow(str(o), int(v), str(t), base64.b64decode(s))
                    for o, v, t, s in data["events"]
                ],
                free=[(str(o), int(v)) for o, v in data.get("free", [])],
            )
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            raise RecordFormatError(f"bad append request: {e}") from None


ReplyKind = Literal["ok", "conflict", "heartbeat"]


@dataclass(frozen=True)
class Reply:
    """The writer's answer to a forwarded append (``ok`` with the event offsets, or
    ``conflict``), or a ``heartbeat`` of the writer holding lease ``epoch``."""

    kind: ReplyKind
    writer: str
    epoch: int
    request_id: str = ""
    offsets: list[int] = field(default_factory=list)
    message: str = ""

    def encode(self) -> bytes:
        return _dump(
            {
                "kind": self.kind,
                "writer": self.writer,
                "epoch": self.epoch,
                "request_id": self.request_id,
                "offsets": self.offsets,
                "message": self.message,
            }
        )

    @classmethod
    def decode(cls, value: bytes) -> Reply:
        data = _load(value)
        kind = data.get("kind")
        if kind not in ("ok", "conflict", "heartbeat"):
            raise RecordFormatError(f"bad reply kind {kind!r}")
        try:
            return cls(
                kind=kind,
                writer=str(data["writer"]),
                epoch=int(data["epoch"]),
                request_id=str(data.get("request_id", "")),
                offsets=[int(o) for o in data.get("offsets", [])],
                message=str(data.get("message", "")),
            )
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            raise RecordFormatError(f"bad reply: {e}") from None


@dataclass(frozen=True)
class LeaseRecord:
    """A claim of the writer role for ``epoch`` (valid only as the first claim of
    that epoch in the leases topic), or the resignation of the holder of ``epoch``."""

    kind: Literal["claim", "resign"]
    writer: str
    epoch: int

    def encode(self) -> bytes:
        return _dump({"kind": self.kind, "writer": self.writer, "epoch": self.epoch})

    @classmethod
    def decode(cls, value: bytes) -> LeaseRecord:
        data = _load(value)
        kind = data.get("kind")
        if kind not in ("claim", "resign"):
            raise RecordFormatError(f"bad lease record kind {kind!r}")
        try:
            return cls(kind=kind, writer=str(data["writer"]), epoch=int(data["epoch"]))
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            raise RecordFormatError(f"bad lease record: {e}") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _dump(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode("utf-8")


def _load(value: bytes | None) -> dict[str, Any]:
    """A coordination message's JSON object; ``RecordFormatError`` for anything else
    (the tailer skips those with a log naming the offset, and must never stop)."""
    try:
        data = json.loads(value or b"")
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise RecordFormatError(f"not JSON: {e}") from None
    if not isinstance(data, dict):
        raise RecordFormatError("not a JSON object")
    return data
