"""The Kafka store passes our store contract, and keeps its promises across instances:
atomic visibility, failover to a new writer, and (on Apache Kafka) aborted
transactions never seen."""

from __future__ import annotations

import threading
import time
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import ApplicationRecorder, IntegrityError

from engine.stores.kafka.recorder import KafkaApplicationRecorder, StoreUnavailableError
from tests.contract import store_contract
from tests.contract.store_contract import commented, envelope_event, opened, wait_until
from tests.support.kafka_broker import KafkaRecorders

pytestmark = pytest.mark.kafka


class TestKafkaStoreContract(KafkaRecorders, store_contract.StoreContract):
    def create_recorder(self) -> ApplicationRecorder:
        return self.kafka_factory().application_recorder()

    def create_peer(self, recorder: ApplicationRecorder) -> ApplicationRecorder:
        assert isinstance(recorder, KafkaApplicationRecorder)
        topic = recorder.log.settings.topic
        return self.kafka_factory(KAFKA_TOPIC=topic).application_recorder()


class TestKafkaInstances(KafkaRecorders):
    def pair(self, **overrides: str) -> tuple[Any, Any]:
        first = self.kafka_factory(**overrides).application_recorder()
        topic = first.log.settings.topic
        return first, self.kafka_factory(KAFKA_TOPIC=topic, **overrides).application_recorder()

    def test_one_append_is_seen_whole_or_not_at_all(self) -> None:
        writer, reader = self.pair()
        appends, size = 40, 30
        seen_partial: list[tuple[str, int]] = []
        done = threading.Event()

        def watch() -> None:
            # Count each append's events in every answer the other instance gives.
            while not done.is_set():
                counts: dict[str, int] = {}
                for n in reader.select_notifications(None, appends * size):
                    marker = n.state.split(b'"correlation_id":"')[1][:36].decode()
                    counts[marker] = counts.get(marker, 0) + 1
                seen_partial.extend((m, c) for m, c in counts.items() if c != size)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            for _ in range(appends):
                # One command: every event carries the command's correlation id.
                correlation = uuid4()
                events = [
                    envelope_event("Ticket", uuid4(), 1, "TicketOpened", correlation_id=correlation)
                    for _ in range(size)
                ]
                writer.insert_events(events)
            assert wait_until(lambda: reader.max_notification_id() == appends * size)
        finally:
            done.set()
            watcher.join()
        assert seen_partial == []

    def test_a_follower_takes_over_when_the_writer_dies(self) -> None:
        first, second = self.pair(KAFKA_LEASE_TIMEOUT_MS="1500")
        assert first.log.writer.state == "active"
        ticket = uuid4()
        first.insert_events([opened(ticket)])
        second.insert_events([commented(ticket, 2)])  # forwarded to the writer

        # The writer dies without resigning: no more heartbeats.
        first.log.writer._resign = lambda: None
        first.log.close()

        # The follower claims the role after the lease timeout and writes itself.
        started = time.monotonic()
        ids = None
        while ids is None and time.monotonic() - started < 15:
            try:
                ids = second.insert_events([commented(ticket, 3)])
            except StoreUnavailableError:
                pass
        assert ids is not None, "no new writer within 15 s"
        assert second.log.writer.state == "active"
        with pytest.raises(IntegrityError):
            second.insert_events([commented(ticket, 3)])
        assert [e.originator_version for e in second.select_events(ticket)] == [1, 2, 3]

    def test_a_clean_close_hands_the_role_over_at_once(self) -> None:
        first, second = self.pair()
        first.log.close()  # resigns
        ticket = uuid4()
        started = time.monotonic()
        second.insert_events([opened(ticket)])
        assert time.monotonic() - started < 3
        assert second.log.writer.state == "active"

    @pytest.mark.apache_kafka
    def test_a_transaction_left_open_by_a_failed_writer_is_never_seen(self) -> None:
        writer, reader = self.pair()
        ticket = uuid4()
        writer.insert_events([opened(ticket)])

        # The writer sends the events, then its commit never completes (a crash
        # between send and commit, as far as the broker knows).
        producer = writer.log.writer._producer
        producer.commit_transaction = lambda: time.sleep(30)
        with pytest.raises(StoreUnavailableError):
            writer.insert_events([commented(ticket, 2, "lost")])

        # The writer recovers by itself (a new producer fences and aborts the old
        # transaction); the aborted events never reach any cache, and the command
        # can be retried.
        writer.insert_events([commented(ticket, 2, "retried")])
        assert wait_until(lambda: reader.max_notification_id() == 2)
        for recorder in (writer, reader):
            states = [e.state for e in recorder.select_events(ticket)]
            assert len(states) == 2 and b"retried" in states[1]
