"""Foreign and malformed records on the event topic (another producer, a bad tool, a
future engine): nothing is skipped silently and no view is corrupted.

Records the store cannot even place (no key, no value, no readable headers) are left out
of the cache with an error log naming the offset. Records it places but that are no
readable event envelope (bad JSON, unknown type, future schema version, missing fields)
stop the views at that position, with the position in GET /health's error, and the
views hold exactly what a rebuild of the log before it gives.
(A non-transactional foreign producer's well-formed record is held until a commit
marker follows it: see docs/kafka.md; only the engine's writer should produce.)

Both kinds of record are generated (tests/unit/fuzz_records.py, fuzzed in depth in
process by tests/unit/test_decoder_fuzz.py); here a few of them go through a broker.
"""

from __future__ import annotations

import logging
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.popo import POPOApplicationRecorder
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from kafka import KafkaProducer

from engine.projections import VIEW_NAMES, Views
from engine.stores.kafka.codec import RecordFormatError, row_from_record
from tests.support.kafka_broker import KafkaRecorders
from tests.unit.fuzz_records import (
    FOREIGN,
    VIEWS_CHECK,
    KafkaRecord,
    Malformed,
    history,
    malformed,
    topics_no_view_reads,
)

pytestmark = pytest.mark.kafka


def _refused(record: KafkaRecord) -> bool:
    try:
        row_from_record(record.key, record.value, record.headers)
    except RecordFormatError:
        return True
    return False


def _producible(record: KafkaRecord) -> KafkaRecord:
    """The record as a producer can send it: no null header values, and a key or a
    value (a producer refuses a record with neither)."""
    headers = [(name, value) for name, value in record.headers if value is not None]
    value = record.value if record.key is not None or record.value is not None else b""
    return KafkaRecord(record.offset, record.key, value, headers)


# Records the store cannot place, and envelopes the views cannot read under a topic
# they read (under a topic no view reads, only the type is checked: see the unit tests).
UNPLACEABLE = FOREIGN.map(_producible).filter(_refused)
UNREADABLE = malformed(VIEWS_CHECK).filter(
    lambda r: r.must_fail and r.topic not in topics_no_view_reads()
)


def _stored(n: Any) -> StoredEvent:
    return StoredEvent(n.originator_id, n.originator_version, n.topic, n.state)


def _dumps(views: Views) -> dict[str, Any]:
    return {name: views._live[name].view.dump() for name in VIEW_NAMES}


def _rebuild(upto: int) -> dict[str, Any]:
    """The views of the valid history's first ``upto`` events, built from SQLite-free
    memory: what the Kafka-backed views must hold when they stop there."""
    recorder = POPOApplicationRecorder()
    for n in history()[:upto]:
        recorder.insert_events([_stored(n)])
    with tempfile.TemporaryDirectory() as tmp:
        views = Views(recorder, Path(tmp))
        try:
            views.catch_up()
            return _dumps(views)
        finally:
            views.close()


class TestForeignRecords(KafkaRecorders):
    @settings(
        max_examples=16,
        deadline=None,
        # Each example costs a topic and broker round trips: report a failure as found
        # rather than spend minutes shrinking it (the unit fuzz tests shrink).
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(unplaceable=UNPLACEABLE, bad=UNREADABLE, prefix=st.integers(0, 8))
    def test_nothing_is_skipped_silently_and_views_stop_at_the_bad_record(
        self,
        unplaceable: KafkaRecord,
        bad: Malformed,
        prefix: int,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.clear()
        topic = f"test-foreign-{uuid.uuid4().hex[:10]}"
        recorder = self.kafka_factory(KAFKA_TOPIC=topic).application_recorder()
        views = Views(recorder, self.kafka_dir / uuid.uuid4().hex)
        producer = KafkaProducer(bootstrap_servers=self.kafka_bootstrap)
        try:
            # 1. Valid events, as the engine's writer records them.
            for n in history()[:prefix]:
                recorder.insert_events([_stored(n)])
            # 2. A record the store cannot place: skipped, with its offset logged.
            caplog.set_level(logging.ERROR)
            skipped_offset = (
                producer.send(
                    topic,
                    key=unplaceable.key,
                    value=unplaceable.value,
                    headers=unplaceable.headers,
                )
                .get(timeout=10)
                .offset
            )
            # 3. A record the store places (as a transactional writer would), but no
            #    readable envelope.
            bad_id = str(uuid.uuid4())
            recorder.insert_events([StoredEvent(uuid.UUID(bad_id), 1, bad.topic, bad.state)])
            producer.flush()

            # The tailer reads the foreign record on its own schedule: wait for its log.
            expected_log = f"topic {topic!r} offset {skipped_offset} skipped"

            def logged() -> bool:
                return any(expected_log in r.getMessage() for r in caplog.records)

            deadline = time.monotonic() + 20
            while not logged():
                assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
                time.sleep(0.05)

            # The foreign record took no position: the bad one follows the valid ones.
            bad_position = recorder.max_notification_id()
            assert bad_position == prefix + 1

            # The views stop at the bad record, say where, and apply nothing past it.
            views.start()
            deadline = time.monotonic() + 20
            while not views.health()["error"]:
                assert time.monotonic() < deadline, "the views did not report the bad record"
                time.sleep(0.05)
            health = views.health()
            assert f"notification {bad_position}" in health["error"]
            positions = {v["position"] for v in health["views"].values()}
            assert len(positions) == 1 and (stopped := positions.pop()) < bad_position
            assert views.history(bad_id) == []
            # What they hold is exactly a rebuild of the valid log up to there.
            views.stop()
            assert _dumps(views) == _rebuild(stopped)
        finally:
            producer.close()
            views.close()
