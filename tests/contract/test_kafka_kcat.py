"""The stream is for everyone: kcat (librdkafka, not our code) reads the topic as an
analytics consumer would, and every record carries the documented key, headers and
self-describing JSON envelope."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import InfrastructureFactory, StoredEvent
from eventsourcing.utils import Environment

from tests.contract.store_contract import commented, envelope_event, opened
from tests.support.kafka_broker import recorder_env

pytestmark = pytest.mark.kafka

ENVELOPE_KEYS = {
    "event_id", "type", "schema_version", "aggregate_type", "aggregate_id",
    "aggregate_version", "occurred_at", "actor", "correlation_id", "causation_id", "data",
}  # fmt: skip


def kcat_consume(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every committed record of the topic, as kcat's JSON envelope (-J)."""
    done = subprocess.run(
        ["kcat", "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q", "-J",
         "-X", "isolation.level=read_committed"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def test_kcat_reads_every_event_with_key_headers_and_envelope(
    kcat_bootstrap: str, tmp_path: Path
) -> None:
    env = Environment(env=recorder_env(kcat_bootstrap, tmp_path))
    factory = InfrastructureFactory.construct(env)
    try:
        recorder = factory.application_recorder()
        topic = recorder.log.settings.topic
        ticket, assignment = uuid4(), uuid4()
        upcasted = envelope_event("Ticket", ticket, 3, "TicketTriaged", {"priority": "P2"})
        upcasted = StoredEvent(
            ticket,
            3,
            "TicketTriaged",
            upcasted.state.replace(b'"schema_version":1', b'"schema_version":2'),
        )
        recorder.insert_events([opened(ticket, "Écran noir — 屏幕 🖥️")])
        # One command across two aggregates.
        recorder.insert_events(
            [
                commented(ticket, 2),
                envelope_event("Assignment", assignment, 1, "TicketAssignedToQueue"),
            ]
        )
        recorder.insert_events([upcasted])
        expected = recorder.select_notifications(None, 100)
    finally:
        factory.close()

    records = kcat_consume(kcat_bootstrap, topic)

    assert len(records) == len(expected) == 4
    for record, event in zip(records, expected, strict=True):
        headers = dict(zip(record["headers"][::2], record["headers"][1::2], strict=True))
        envelope = json.loads(record["payload"])
        # Value: the stored state, byte for byte; a self-describing envelope.
        assert record["payload"].encode("utf-8") == event.state
        assert set(envelope) == ENVELOPE_KEYS
        # Key and headers: what a consumer needs without parsing the value.
        assert record["key"] == str(event.originator_id) == envelope["aggregate_id"]
        assert headers == {
            "type": event.topic,
            "aggregate_id": str(event.originator_id),
            "aggregate_version": str(event.originator_version),
            "schema_version": str(envelope["schema_version"]),
            "record_kind": "domain",
            # CloudEvents Kafka binding, binary content mode (docs/kafka.md).
            "ce_specversion": "1.0",
            "ce_id": envelope["event_id"],
            "ce_source": f"/ticketing/{envelope['aggregate_type']}/{envelope['aggregate_id']}",
            "ce_type": event.topic,
            "ce_time": envelope["occurred_at"],
            "ce_dataschema": f"urn:ticketing:event:{event.topic}:v{envelope['schema_version']}",
            "content-type": "application/json",
        }
        assert envelope["type"] == event.topic
        assert envelope["aggregate_version"] == event.originator_version
    assert [r["offset"] for r in records] == sorted(r["offset"] for r in records)
    assert json.loads(records[-1]["payload"])["schema_version"] == 2
