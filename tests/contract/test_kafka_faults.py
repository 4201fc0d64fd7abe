"""Broker trouble is not data loss.

- Unreachable broker (the proxy in front of it cut; the broker keeps its data, as a
  real Kafka broker does across an outage): appends fail fast with
  StoreUnavailableError, reads keep answering from the cache, and when the broker is
  back the same recorders append again by themselves; nothing from the outage appears.
- Broker restarted without its data (Tansu keeps topics in memory): the recorder
  notices that the topic no longer holds what its cache copied, and refuses appends
  and reads with CacheDivergedError (the cause and the fix: tests/contract/
  test_kafka_divergence.py).
"""

from __future__ import annotations

import time
from typing import Any
from uuid import uuid4

import pytest

from engine.stores.kafka.recorder import CacheDivergedError, StoreUnavailableError
from tests.contract.store_contract import commented, opened, wait_until
from tests.support.kafka_broker import ControlledBroker, KafkaRecorders, free_port

pytestmark = pytest.mark.kafka

APPEND_TIMEOUT = 3.0
FAST = {
    "KAFKA_APPEND_TIMEOUT_MS": str(int(APPEND_TIMEOUT * 1000)),
    "KAFKA_COMMIT_TIMEOUT_MS": "1500",
    "KAFKA_REQUEST_TIMEOUT_MS": "1000",
    # Longer than the outage: the writer keeps its role throughout.
    "KAFKA_LEASE_TIMEOUT_MS": "30000",
}


def append_eventually(recorder: Any, events: list[Any], timeout: float = 30.0) -> Any:
    """Retry an append refused as unavailable until it succeeds or ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return recorder.insert_events(events)
        except StoreUnavailableError:
            if time.monotonic() > deadline:
                raise


class TestBrokerOutage(KafkaRecorders):
    def test_appends_fail_fast_reads_go_on_and_appends_resume(
        self, controlled_broker: ControlledBroker
    ) -> None:
        settings = {"KAFKA_BOOTSTRAP_SERVERS": controlled_broker.bootstrap, **FAST}
        writer = self.kafka_factory(**settings).application_recorder()
        topic = writer.log.settings.topic
        follower = self.kafka_factory(KAFKA_TOPIC=topic, **settings).application_recorder()
        ticket = uuid4()
        writer.insert_events([opened(ticket)])
        follower.insert_events([commented(ticket, 2)])
        assert wait_until(lambda: writer.max_notification_id() == 2)
        before = writer.select_notifications(None, 100)

        controlled_broker.cut()

        for recorder in (writer, follower):
            # Check an append is refused within its deadline...
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError):
                recorder.insert_events([commented(ticket, 3, "during the outage")])
            assert time.monotonic() - started < APPEND_TIMEOUT + 1.5
            # ...and reads answer from the cache at once.
            started = time.monotonic()
            assert recorder.select_notifications(None, 100) == before
            assert len(recorder.select_events(ticket)) == 2
            assert time.monotonic() - started < 0.5

        controlled_broker.restore()

        # The same recorders append again, without a restart.
        append_eventually(writer, [commented(ticket, 3, "after the outage")])
        append_eventually(follower, [commented(ticket, 4, "after the outage")])
        for recorder in (writer, follower):
            assert wait_until(lambda r=recorder: r.max_notification_id() == 4)
            states = [e.state for e in recorder.select_events(ticket)]
            assert [b"during the outage" in s for s in states] == [False] * 4


class TestBrokerDataLoss(KafkaRecorders):
    def test_a_topic_that_lost_the_cached_events_is_refused(
        self, controlled_broker: ControlledBroker
    ) -> None:
        settings = {"KAFKA_BOOTSTRAP_SERVERS": controlled_broker.bootstrap, **FAST}
        recorder = self.kafka_factory(**settings).application_recorder()
        ticket = uuid4()
        recorder.insert_events([opened(ticket), commented(ticket, 2)])
        before = recorder.select_notifications(None, 100)

        controlled_broker.restart()  # memory storage: every topic is gone

        deadline = time.monotonic() + 30
        while True:
            try:
                recorder.insert_events([commented(ticket, 3)])
            except CacheDivergedError as e:
                assert "lost its data" in str(e)
                break
            except StoreUnavailableError:
                assert time.monotonic() < deadline, "the loss was not detected"
            else:
                pytest.fail("an append was accepted by a broker that lost the log")
        with pytest.raises(CacheDivergedError):
            recorder.insert_events([commented(ticket, 3)])
        # Reads of that history are refused too (#13 item 2): never a mixture.
        with pytest.raises(CacheDivergedError, match="ticketing cache rebuild"):
            recorder.select_notifications(None, 100)
        with pytest.raises(CacheDivergedError):
            recorder.select_events(ticket)
        assert len(before) == 2


class TestBrokerDownAtStart(KafkaRecorders):
    def test_start_fails_with_store_unavailable(self) -> None:
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError):
            self.kafka_factory(
                KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}", KAFKA_STARTUP_TIMEOUT_MS="2000"
            ).application_recorder()
        assert time.monotonic() - started < 10
