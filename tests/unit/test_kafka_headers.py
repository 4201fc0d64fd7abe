"""The headers of an event record (engine/stores/kafka/codec.py): what a consumer reads
without parsing the value. Every envelope record is a CloudEvent in the Kafka binding's
binary content mode, and the engine's bookkeeping is marked as such."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import UUID

import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary_event

from engine.domain.base import EVENT_TYPES
from engine.domain.idempotency import CommandProcessed
from engine.domain.ticket import TicketClosed
from engine.stores.envelope import EnvelopeMapper, is_bookkeeping
from engine.stores.kafka.codec import EventRow, event_record, row_from_record

WHEN = datetime(2026, 11, 24, 9, 30, 0, 123456, tzinfo=UTC)
IDS = {
    "originator_id": UUID("00000000-0000-4000-8000-000000000001"),
    "originator_version": 3,
    "event_id": UUID("00000000-0000-4000-8000-000000000002"),
    "occurred_at": WHEN,
    "actor": "agent:7",
    "correlation_id": UUID("00000000-0000-4000-8000-000000000003"),
}


def row_of(event: TicketClosed | CommandProcessed) -> EventRow:
    stored = EnvelopeMapper().to_stored_event(event)
    return EventRow(
        str(stored.originator_id), stored.originator_version, stored.topic, stored.state
    )


def test_an_envelope_record_is_a_cloudevent_in_binary_mode() -> None:
    row = row_of(TicketClosed(reason="done", **IDS))
    key, value, headers = event_record(row)
    envelope = json.loads(value)

    event = from_binary_event(KafkaMessage(headers=dict(headers), key=key, value=value))

    assert event.get_specversion() == "1.0"
    assert event.get_id() == envelope["event_id"] == str(IDS["event_id"])
    assert event.get_type() == "TicketClosed"
    assert event.get_source() == f"/ticketing/Ticket/{IDS['originator_id']}"
    assert event.get_time() == WHEN
    assert event.get_dataschema() == "urn:ticketing:event:TicketClosed:v1"
    assert event.get_datacontenttype() == "application/json"
    assert event.get_data() == envelope
    # Reading the record back is unchanged by the extra headers.
    assert row_from_record(key, value, headers) == row


def test_bookkeeping_is_marked_and_domain_events_are_not() -> None:
    processed = CommandProcessed(
        key="k-1", method="POST", path="/tickets", request_hash="0" * 64,
        status_code=201, response={"ticket_id": "t"}, **IDS,
    )  # fmt: skip
    kinds = {
        dict(event_record(row)[2])["record_kind"]
        for row in [row_of(processed), row_of(TicketClosed(reason="done", **IDS))]
    }
    assert kinds == {b"bookkeeping", b"domain"}
    assert {name for name in EVENT_TYPES if is_bookkeeping(name)} == {
        "CommandProcessed",
        "CheckpointRecorded",
    }


@pytest.mark.parametrize(
    "state",
    [
        b"state1",  # what the library's own recorder tests write
        b'{"schema_version": 1}',
        b'{"schema_version": 1, "event_id": "e", "aggregate_type": "T", "occurred_at": "soon"}',
        b'{"schema_version":1,"event_id":"e","aggregate_type":"T","occurred_at":"2026-11-24"}',
        b'{"schema_version": 1, "event_id": "\\ud800", "aggregate_type": "T",'
        b' "occurred_at": "2026-11-24T09:00:00Z"}',
    ],
)
def test_a_record_that_is_no_envelope_claims_no_cloudevent(state: bytes) -> None:
    _, _, headers = event_record(EventRow("a", 1, "T", state))
    names = {name for name, _ in headers}
    assert not any(n.startswith("ce_") or n in ("content-type", "record_kind") for n in names)
