"""The event topic is safe for an audit trail: created with infinite retention, never
compacted, one partition; an existing topic that could lose events is refused unless
explicitly allowed; settings a broker does not report are warned about, not refused."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource

from engine.stores.kafka.recorder import UnsafeTopicError
from engine.stores.kafka.topic import (
    TopicAssessment,
    assess_event_topic,
    check_event_topic,
    partition_counts,
    topic_configs,
)
from tests.support.kafka_broker import KafkaRecorders

SAFE = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}


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
        # The message names the setting found and the override key.
        assert f"{setting}={value}" in str(raised.value)
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
        with pytest.raises(UnsafeTopicError, match="3 partitions"):
            self.kafka_factory(KAFKA_TOPIC=topic).application_recorder()
