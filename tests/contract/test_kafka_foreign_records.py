"""Foreign and malformed records on the event topic (another producer, a bad tool, a
future engine): nothing is skipped silently and no view is corrupted.

Records the store cannot even place (no key, no value, no readable headers) are left out
of the cache with an error log naming the offset. Records it places but that are no
readable event envelope (bad JSON, unknown type, future schema version, missing fields)
stop the views at exactly that position, with the position in GET /health's error.
(A non-transactional foreign producer's well-formed record is held until a commit
marker follows it: see docs/kafka.md; only the engine's writer should produce.)"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka import KafkaProducer

from engine.projections import Views
from tests.support.kafka_broker import KafkaRecorders

pytestmark = pytest.mark.kafka

GOOD_HEADERS = [("aggregate_version", b"1")]

BAD_ENVELOPES = st.sampled_from(
    [
        b"not json at all",
        b"[1, 2, 3]",
        json.dumps({"type": "TicketOpened"}).encode(),  # missing envelope fields
        json.dumps(
            {
                "event_id": str(uuid.uuid4()), "type": "NoSuchEvent", "schema_version": 1,
                "aggregate_type": "Ticket", "aggregate_id": str(uuid.uuid4()),
                "aggregate_version": 1, "occurred_at": "2026-11-24T09:00:00Z", "actor": "x",
                "correlation_id": str(uuid.uuid4()), "causation_id": None, "data": {},
                "prev_hash": None, "hash": "0" * 64,
            }
        ).encode(),
        json.dumps(
            {
                "event_id": str(uuid.uuid4()), "type": "TicketClosed", "schema_version": 99,
                "aggregate_type": "Ticket", "aggregate_id": str(uuid.uuid4()),
                "aggregate_version": 1, "occurred_at": "2026-11-24T09:00:00Z", "actor": "x",
                "correlation_id": str(uuid.uuid4()), "causation_id": None, "data": {},
                "prev_hash": None, "hash": "0" * 64,
            }
        ).encode(),
        b"\xff\xfe\x00 not utf-8",
    ]
)  # fmt: skip
UNPLACEABLE = st.sampled_from(["no key", "no type header", "no value"])


class TestForeignRecords(KafkaRecorders):
    @settings(
        max_examples=4,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(unplaceable=UNPLACEABLE, bad=BAD_ENVELOPES)
    def test_nothing_is_skipped_silently_and_views_stop_at_the_bad_record(
        self, unplaceable: str, bad: bytes, caplog: pytest.LogCaptureFixture
    ) -> None:
        topic = f"test-foreign-{uuid.uuid4().hex[:10]}"
        recorder = self.kafka_factory(KAFKA_TOPIC=topic).application_recorder()
        views = Views(recorder, self.kafka_dir / uuid.uuid4().hex)
        producer = KafkaProducer(bootstrap_servers=self.kafka_bootstrap)
        try:
            aggregate = str(uuid.uuid4())
            # 1. A record the store cannot place: skipped, with its offset logged.
            record: dict[str, Any] = {
                "key": aggregate.encode(),
                "value": b"{}",
                "headers": [("type", b"Foreign"), ("aggregate_id", aggregate.encode()),
                            *GOOD_HEADERS],
            }  # fmt: skip
            if unplaceable == "no key":
                record["key"] = None
            elif unplaceable == "no value":
                record["value"] = None
            else:
                record["headers"] = [h for h in record["headers"] if h[0] != "type"]
            caplog.set_level(logging.ERROR)
            skipped_offset = producer.send(topic, **record).get(timeout=10).offset
            # 2. A record the store places (as a transactional writer would), but no
            #    readable envelope.
            bad_id = str(uuid.uuid4())
            recorder.insert_events([StoredEvent(uuid.UUID(bad_id), 1, "TicketOpened", bad)])
            producer.flush()

            # The tailer reads the foreign record on its own schedule: wait for its log.
            def logged() -> bool:
                return any(
                    f"offset {skipped_offset} skipped" in r.getMessage() for r in caplog.records
                )

            deadline = time.monotonic() + 20
            while not logged():
                assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
                time.sleep(0.05)

            # The views stop at the bad record, say where, and apply nothing past it.
            bad_position = recorder.max_notification_id()
            views.start()
            deadline = time.monotonic() + 20
            while not views.health()["error"]:
                assert time.monotonic() < deadline, "the views did not report the bad record"
                time.sleep(0.05)
            health = views.health()
            assert f"notification {bad_position}" in health["error"]
            assert all(v["position"] < bad_position for v in health["views"].values())
            assert views.queues() == [] and views.history(bad_id) == []
        finally:
            producer.close()
            views.close()
