"""The event topic is safe for an audit trail: created with infinite retention, never
compacted, one partition; an existing topic that could lose events is refused unless
explicitly allowed; settings a broker does not report are warned about, not refused.

Every topic is created explicitly before any request that could make a broker create
it (Tansu creates a topic a client merely asks about, with 4 partitions); a topic with
more partitions is refused naming the topic, what is wrong and the command that fixes
it (#13 item 3). The auxiliary topics' names and headers mark them internal."""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource
from kafka.errors import TopicAlreadyExistsError

from engine.stores.kafka.codec import HEADER_INTERNAL
from engine.stores.kafka.recorder import UnsafeTopicError
from engine.stores.kafka.settings import KafkaSettings
from engine.stores.kafka.topic import (
    TopicAssessment,
    assess_event_topic,
    check_event_topic,
    ensure_topics_with,
    partition_counts,
    topic_configs,
    wanted_topics,
)
from tests.contract.store_contract import opened
from tests.support.kafka_broker import KafkaRecorders

SAFE = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}


def read_all(bootstrap: str, topic: str) -> list[Any]:
    """Every committed record of partition 0 of ``topic``, from the beginning."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level="read_committed",
        enable_auto_commit=False,
        allow_auto_create_topics=False,
    )
    tp = TopicPartition(topic, 0)
    try:
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        records: list[Any] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            records.extend(consumer.poll(timeout_ms=200).get(tp, ()))
            end = consumer.highwater(tp)
            if end is not None and consumer.position(tp) >= end:
                break
        return records
    finally:
        consumer.close()


def described(configs: dict[str, str]) -> dict[str, Any]:
    """A kafka-python ``describe_configs(config_filter="all")`` answer for topic "t"."""
    entries = {
        key: {"value": value, "read_only": False, "config_source": "DEFAULT_CONFIG"}
        for key, value in configs.items()
    }
    return {"topic": {"t": entries}}


class StandInAdmin:
    """Answers as a broker would; only what the topic check asks."""

    def __init__(self, configs: dict[str, Any], partitions: int = 1) -> None:
        self.configs = configs
        self.partitions = partitions

    def describe_configs(self, resources: list[Any], config_filter: str) -> dict[str, Any]:
        assert config_filter == "all"  # defaults matter: a broker default may be finite
        return self.configs

    def describe_topics(self, names: list[str]) -> list[dict[str, Any]]:
        return [{"name": n, "error_code": 0, "partitions": [{}] * self.partitions} for n in names]


class RecordingAdmin:
    """A broker that creates a topic it is asked about (as Tansu does, with 4
    partitions), and records the order of the requests."""

    def __init__(self, existing: dict[str, int] | None = None) -> None:
        self.topics: dict[str, int] = dict(existing or {})
        self.calls: list[tuple[str, str]] = []
        self.created: dict[str, dict[str, Any]] = {}

    def create_topics(self, topics: dict[str, dict[str, Any]], wait_for_metadata: bool) -> None:
        ((name, spec),) = topics.items()
        self.calls.append(("create", name))
        if name in self.topics:
            raise TopicAlreadyExistsError
        self.topics[name] = spec["num_partitions"]
        self.created[name] = spec

    def describe_topics(self, names: list[str]) -> list[dict[str, Any]]:
        for name in names:
            self.calls.append(("describe", name))
            self.topics.setdefault(name, 4)  # a metadata request creates it
        return [{"name": n, "error_code": 0, "partitions": [{}] * self.topics[n]} for n in names]

    def describe_configs(self, resources: list[Any], config_filter: str) -> dict[str, Any]:
        return {"topic": {}}


def settings_for(topic: str) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers="broker:9092",
        topic=topic,
        cache_path=Path("unused.sqlite"),
        local_db_path=Path("unused.local.sqlite"),
        writer_id="w",
        transactional_id="t",
        writer_group_id="g",
    )


class TestCreation:
    def test_every_topic_is_created_before_any_request_that_could_create_it(self) -> None:
        admin = RecordingAdmin()
        settings = settings_for("desk")
        ensure_topics_with(admin, settings)
        names = list(wanted_topics(settings))
        first_describe = next(i for i, (kind, _) in enumerate(admin.calls) if kind == "describe")
        assert admin.calls[:first_describe] == [("create", n) for n in names]
        assert admin.topics == dict.fromkeys(names, 1)
        assert {n: spec["num_partitions"] for n, spec in admin.created.items()} == dict.fromkeys(
            names, 1
        )
        assert admin.created["desk"]["configs"] == SAFE

    @pytest.mark.parametrize("which", [0, 1, 2, 3])
    def test_an_existing_partitioned_topic_is_refused_naming_it_and_the_fix(
        self, which: int
    ) -> None:
        settings = settings_for("desk")
        wrong = list(wanted_topics(settings))[which]
        with pytest.raises(UnsafeTopicError) as raised:
            ensure_topics_with(RecordingAdmin({wrong: 4}), settings)
        message = str(raised.value)
        assert f"topic {wrong!r} has 4 partitions" in message  # the topic, what is wrong
        assert "needs exactly 1" in message
        # ... the likely cause, and the command that fixes it.
        assert "creates a missing topic when a client asks for its metadata" in message
        assert f"kafka-topics.sh --bootstrap-server broker:9092 --delete --topic {wrong}" in message

    def test_the_auxiliary_topics_are_named_as_internal(self) -> None:
        names = list(wanted_topics(settings_for("desk")))
        assert names == ["desk", "desk.__leases", "desk.__requests", "desk.__replies"]


class TestAssessment:
    def test_infinite_delete_topic_is_safe(self) -> None:
        assessment = assess_event_topic(topic_configs(StandInAdmin(described(SAFE)), "t"), 1)
        assert assessment == TopicAssessment([], [], 1)

    @pytest.mark.parametrize(
        ("setting", "value"),
        [
            ("retention.ms", "604800000"),  # Apache Kafka's default: 7 days
            ("retention.bytes", "1073741824"),
            ("cleanup.policy", "compact"),
            ("cleanup.policy", "compact,delete"),
        ],
    )
    def test_settings_that_lose_events_are_refused(self, setting: str, value: str) -> None:
        answer = described({**SAFE, setting: value})
        assessment = assess_event_topic(topic_configs(StandInAdmin(answer), "t"), 1)
        assert assessment.unsafe == [f"{setting}={value}"]
        with pytest.raises(UnsafeTopicError) as raised:
            check_event_topic("t", assessment, allow_unsafe=False)
        # The message names the setting found, the command that fixes it, the override key.
        assert f"{setting}={value}" in str(raised.value)
        assert "kafka-configs.sh --bootstrap-server <broker> --alter" in str(raised.value)
        assert "KAFKA_ALLOW_UNSAFE_TOPIC" in str(raised.value)

    def test_the_override_starts_anyway_with_a_warning(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        assessment = assess_event_topic({**SAFE, "retention.ms": "1000"}, 1)
        check_event_topic("t", assessment, allow_unsafe=True)
        assert "retention.ms=1000" in caplog.text

    def test_unreported_settings_are_warned_about_not_refused(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        # Tansu reports only the settings a topic was created with: here, none.
        answer = {"topic": {"t": {}}}
        assessment = assess_event_topic(topic_configs(StandInAdmin(answer), "t"), 1)
        assert assessment.unknown == ["retention.ms", "retention.bytes", "cleanup.policy"]
        with caplog.at_level(logging.WARNING, logger="engine.stores.kafka"):
            check_event_topic("t", assessment, allow_unsafe=False)
        assert "does not report retention.ms, retention.bytes, cleanup.policy" in caplog.text

    def test_more_than_one_partition_is_refused_even_when_unsafe_is_allowed(self) -> None:
        partitions = partition_counts(StandInAdmin({}, partitions=3), ["t"])["t"]
        with pytest.raises(UnsafeTopicError, match="3 partitions"):
            check_event_topic("t", assess_event_topic(SAFE, partitions), allow_unsafe=True)


@pytest.mark.kafka
class TestOnTheBroker(KafkaRecorders):
    def admin(self) -> Any:
        return KafkaAdminClient(bootstrap_servers=self.kafka_bootstrap, request_timeout_ms=5000)

    def test_the_event_topic_is_created_safe(self) -> None:
        recorder = self.kafka_factory().application_recorder()
        topic = recorder.log.settings.topic
        admin = self.admin()
        try:
            answer = admin.describe_configs([ConfigResource("TOPIC", topic)], config_filter="all")
            configs = {k: v["value"] for k, v in answer["topic"][topic].items()}
            partitions = partition_counts(admin, [topic])
        finally:
            admin.close()
        assert {k: configs[k] for k in SAFE} == SAFE
        assert partitions == {topic: 1}

    def test_an_existing_unsafe_topic_is_refused_unless_allowed(self) -> None:
        topic = f"test-unsafe-{uuid.uuid4().hex[:8]}"
        admin = self.admin()
        try:
            admin.create_topics(
                {
                    topic: {
                        "num_partitions": 1,
                        "replication_factor": -1,
                        "configs": {"retention.ms": "86400000"},
                    }
                }
            )
        finally:
            admin.close()
        with pytest.raises(UnsafeTopicError, match="retention.ms=86400000"):
            self.kafka_factory(KAFKA_TOPIC=topic).application_recorder()
        allowed = self.kafka_factory(KAFKA_TOPIC=topic, KAFKA_ALLOW_UNSAFE_TOPIC="true")
        assert allowed.application_recorder().max_notification_id() is None

    def test_an_existing_topic_with_several_partitions_is_refused(self) -> None:
        topic = f"test-partitioned-{uuid.uuid4().hex[:8]}"
        admin = self.admin()
        try:
            admin.create_topics(
                {topic: {"num_partitions": 3, "replication_factor": -1, "configs": SAFE}}
            )
        finally:
            admin.close()
        with pytest.raises(UnsafeTopicError, match="3 partitions") as raised:
            self.kafka_factory(KAFKA_TOPIC=topic).application_recorder()
        assert f"--delete --topic {topic}" in str(raised.value)

    def test_a_topic_a_client_asked_about_first_is_created_right_or_refused_clearly(
        self,
    ) -> None:
        # A client asks about the missing topic before the engine's first start (kcat -L
        # -t does): Tansu creates it with 4 partitions; Apache Kafka creates it with the
        # broker's num.partitions (1 by default) if auto.create.topics.enable, else none.
        topic = f"test-asked-{uuid.uuid4().hex[:8]}"
        consumer = KafkaConsumer(bootstrap_servers=self.kafka_bootstrap, enable_auto_commit=False)
        try:
            consumer.assign([TopicPartition(topic, 0)])
            consumer.seek(TopicPartition(topic, 0), 0)
            consumer.poll(timeout_ms=1000)
        finally:
            consumer.close()
        admin = self.admin()
        try:
            partitions = partition_counts(admin, [topic]).get(topic, 1)
        finally:
            admin.close()
        if partitions == 1:
            assert self.kafka_factory(KAFKA_TOPIC=topic).application_recorder() is not None
        else:
            with pytest.raises(UnsafeTopicError) as raised:
                self.kafka_factory(KAFKA_TOPIC=topic).application_recorder()
            assert f"topic {topic!r} has {partitions} partitions" in str(raised.value)
            assert f"--delete --topic {topic}" in str(raised.value)

    def test_the_engine_makes_every_topic_with_one_partition_and_marks_its_own_records(
        self,
    ) -> None:
        writer = self.kafka_factory().application_recorder()
        settings = writer.log.settings
        follower = self.kafka_factory(KAFKA_TOPIC=settings.topic).application_recorder()
        follower.insert_events([opened(uuid.uuid4())])  # forwarded: a request and a reply
        admin = self.admin()
        try:
            counts = partition_counts(admin, list(wanted_topics(settings)))
        finally:
            admin.close()
        assert counts == dict.fromkeys(wanted_topics(settings), 1)
        bootstrap = self.kafka_bootstrap
        headers = {
            name: [dict(r.headers).get(HEADER_INTERNAL) for r in read_all(bootstrap, name)]
            for name in wanted_topics(settings)
        }
        assert headers[settings.topic] == [None]  # the event carries no internal mark
        assert set(headers[settings.leases_topic]) == {b"lease"}
        assert set(headers[settings.requests_topic]) == {b"request"}
        assert set(headers[settings.replies_topic]) == {b"reply"}
