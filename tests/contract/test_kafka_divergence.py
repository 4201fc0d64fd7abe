"""A topic that no longer holds the cached history is never served (#13 item 2).

- A foreign record that does not continue its aggregate's hash chain (on any broker,
  Apache Kafka too): the recorder diverges at that record's offset, and its appends and
  reads raise CacheDivergedError naming the cause and the fix; a foreign record that
  does continue the chain is taken in like any other.
- The broker loses its data and the topic is refilled with other records (the local
  test broker only: it is restarted): the recorder diverges, never serves a record of
  the new history beside the old ones, and ``rebuild_cache`` gives it the new history.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import OperationalError, StoredEvent
from kafka import KafkaProducer

from engine.integrity.chain import envelope_hash
from engine.integrity.jsonbytes import compact_json
from engine.stores.kafka.codec import EventRow, event_record
from engine.stores.kafka.errors import REBUILD_COMMAND, CacheDivergedError
from engine.stores.kafka.rebuild import rebuild_cache
from engine.stores.kafka.topic import wanted_topics
from tests.contract.store_contract import wait_until
from tests.support.kafka_broker import ControlledBroker, KafkaRecorders

pytestmark = pytest.mark.kafka


def chained(aggregate: UUID, versions: range, prev: str | None = None) -> list[StoredEvent]:
    """Envelopes of one aggregate, linked as the application links them."""
    events = []
    for version in versions:
        envelope: dict[str, Any] = {
            "event_id": str(uuid.uuid4()),
            "type": "TicketCommented",
            "schema_version": 1,
            "aggregate_type": "Ticket",
            "aggregate_id": str(aggregate),
            "aggregate_version": version,
            "occurred_at": "2026-11-24T09:00:00Z",
            "actor": "agent-7",
            "correlation_id": str(uuid.uuid4()),
            "causation_id": None,
            "data": {"body": f"comment {version}"},
            "prev_hash": prev,
        }
        envelope["hash"] = prev = envelope_hash(envelope)
        events.append(StoredEvent(aggregate, version, "TicketCommented", compact_json(envelope)))
    return events


def hash_of(event: StoredEvent) -> str:
    import json

    return str(json.loads(event.state)["hash"])


def produce_foreign(bootstrap: str, topic: str, event: StoredEvent) -> int:
    """Another producer's record, committed in a transaction of its own (a commit
    marker follows it, as after any writer's record). Returns its offset."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        transactional_id=f"foreign-{uuid.uuid4().hex[:8]}",
        enable_idempotence=True,
        acks="all",
    )
    try:
        producer.init_transactions()
        producer.begin_transaction()
        row = EventRow(str(event.originator_id), event.originator_version, event.topic, event.state)
        key, value, headers = event_record(row)
        sent = producer.send(topic, key=key, value=value, headers=headers, partition=0)
        producer.commit_transaction()
        return int(sent.get(timeout=10).offset)
    finally:
        producer.close(timeout=5)


def drop_partitioned(bootstrap: str, topics: list[str]) -> None:
    """Delete those of ``topics`` that have more than one partition (as an operator
    would, following the engine's refusal)."""
    from kafka import KafkaAdminClient

    from engine.stores.kafka.topic import partition_counts

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        wrong = [t for t, n in partition_counts(admin, topics).items() if n != 1]
        if wrong:
            admin.delete_topics(wrong)
            assert wait_until(lambda: not set(wrong) & set(partition_counts(admin, wrong)), 10)
    finally:
        admin.close()


def assert_refused_naming_cause_and_fix(recorder: Any, ticket: UUID, cause: str) -> None:
    for read in (
        lambda: recorder.select_notifications(None, 100),
        lambda: recorder.select_events(ticket),
        lambda: recorder.max_notification_id(),
        lambda: recorder.insert_events(chained(uuid.uuid4(), range(1, 2))),
    ):
        with pytest.raises(CacheDivergedError) as raised:
            read()
        assert cause in str(raised.value) and REBUILD_COMMAND in str(raised.value)


class TestChainBreak(KafkaRecorders):
    def test_a_record_that_does_not_continue_the_chain_diverges_the_cache(self) -> None:
        recorder = self.kafka_factory().application_recorder()
        topic = recorder.log.settings.topic
        ticket = uuid.uuid4()
        events = chained(ticket, range(1, 3))
        recorder.insert_events(events)

        # A foreign record that continues the chain is taken in like any other.
        follows = chained(ticket, range(3, 4), prev=hash_of(events[-1]))
        produce_foreign(self.kafka_bootstrap, topic, follows[0])
        assert wait_until(lambda: recorder.log.cache.head == 3, 20)
        assert recorder.diverged is None

        # One that links to another history's event is not: the cache diverges there.
        stray = chained(ticket, range(4, 5), prev=hashlib.sha256(b"elsewhere").hexdigest())
        offset = produce_foreign(self.kafka_bootstrap, topic, stray[0])
        assert wait_until(lambda: recorder.diverged is not None, 20), "the break was not seen"
        divergence = recorder.diverged.divergence
        assert divergence.offset == offset
        assert "does not continue the hash chain" in divergence.cause
        assert recorder.log.cache.head == 3  # the stray record was not taken in
        assert_refused_naming_cause_and_fix(recorder, ticket, "does not continue the hash chain")

        # The fix refuses to run beside the process that uses the cache...
        with pytest.raises(OperationalError, match="in use by another recorder"):
            rebuild_cache(recorder.log.settings)
        # ...and, with the process stopped, refuses a topic whose own records do not
        # chain, leaving the cache as it was.
        settings = recorder.log.settings
        self.kafka_factories.remove(factory := self.kafka_factories[0])
        factory.close()
        with pytest.raises(CacheDivergedError, match="does not continue the hash chain"):
            rebuild_cache(settings)
        kept = self.kafka_factory(
            KAFKA_TOPIC=topic, KAFKA_CACHE_PATH=str(settings.cache_path)
        ).application_recorder()
        assert kept.log.cache.head == 3


class TestRefilledTopic(KafkaRecorders):
    def test_a_refilled_topic_is_never_served_beside_the_cached_history(
        self, controlled_broker: ControlledBroker
    ) -> None:
        settings = {"KAFKA_BOOTSTRAP_SERVERS": controlled_broker.bootstrap}
        recorder = self.kafka_factory(**settings).application_recorder()
        topic = recorder.log.settings.topic
        ticket = uuid.uuid4()
        recorder.insert_events(chained(ticket, range(1, 4)))
        before = recorder.select_notifications(None, 100)

        # The broker loses its data (memory storage). Until the recorder sees it, it
        # serves only its own history; then nothing.
        controlled_broker.restart()
        deadline = time.monotonic() + 20
        while recorder.diverged is None:
            assert time.monotonic() < deadline, "the divergence was not noticed"
            try:
                assert recorder.select_notifications(None, 100) == before
            except CacheDivergedError:
                break
            time.sleep(0.01)
        assert_refused_naming_cause_and_fix(recorder, ticket, "lost its data")

        # The topic is refilled by a fresh instance, with more records than the cache
        # holds. (Tansu creates a topic that a client asks about, with 4 partitions:
        # the recorder's own requests may have; an operator deletes such topics first.)
        drop_partitioned(controlled_broker.bootstrap, list(wanted_topics(recorder.log.settings)))
        refill = self.kafka_factory(KAFKA_TOPIC=topic, **settings).application_recorder()
        for _ in range(4):
            refill.insert_events(chained(uuid.uuid4(), range(1, 3)))
        assert_refused_naming_cause_and_fix(recorder, ticket, "lost its data")
        assert recorder.log.cache.head == len(before)

        # The fix: rebuild the cache from the topic as it is now.
        cache_settings = recorder.log.settings
        self.kafka_factories.remove(factory := self.kafka_factories[0])
        factory.close()
        copied = rebuild_cache(cache_settings)
        assert copied == 8
        again = self.kafka_factory(
            KAFKA_TOPIC=topic, KAFKA_CACHE_PATH=str(cache_settings.cache_path), **settings
        ).application_recorder()
        assert again.diverged is None
        assert again.select_notifications(None, 100) == refill.select_notifications(None, 100)
        assert again.select_events(ticket) == []
