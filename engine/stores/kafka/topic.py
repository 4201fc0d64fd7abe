"""Creating the topics, and refusing an event topic that could lose events.

The event topic is the system of record: it is created with infinite retention
(``retention.ms=-1``, ``retention.bytes=-1``) and ``cleanup.policy=delete`` (never
compacted), with one partition, because one partition gives one global order and
that order is the notification order. An existing event topic with finite retention
or compaction is refused (``UnsafeTopicError``) unless ``KAFKA_ALLOW_UNSAFE_TOPIC``;
settings the broker does not report are logged as unknown, not refused.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource
from kafka.errors import KafkaError, TopicAlreadyExistsError

from engine.stores.kafka.errors import StoreUnavailableError, UnsafeTopicError
from engine.stores.kafka.settings import KAFKA_ALLOW_UNSAFE_TOPIC, KafkaSettings

log = logging.getLogger("engine.stores.kafka")

EVENT_TOPIC_CONFIGS = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}


@dataclass(frozen=True)
class TopicAssessment:
    """What a broker's answer says about an event topic's safety."""

    unsafe: list[str] = field(default_factory=list)  # "setting=value" that could lose events
    unknown: list[str] = field(default_factory=list)  # settings the broker did not report
    partitions: int = 1


def assess_event_topic(configs: Mapping[str, str | None], partitions: int) -> TopicAssessment:
    """Judge an event topic from its configs (as described by the broker, defaults
    included) and its partition count. Pure: tests feed it stand-in answers."""
    unsafe: list[str] = []
    unknown: list[str] = []
    for name in ("retention.ms", "retention.bytes"):
        value = configs.get(name)
        if value is None:
            unknown.append(name)
            continue
        try:
            infinite = int(value) < 0
        except ValueError:
            infinite = False
        if not infinite:
            unsafe.append(f"{name}={value}")
    policy = configs.get("cleanup.policy")
    if policy is None:
        unknown.append("cleanup.policy")
    elif {p.strip() for p in policy.split(",")} != {"delete"}:
        unsafe.append(f"cleanup.policy={policy}")
    return TopicAssessment(unsafe, unknown, partitions)


def check_event_topic(topic: str, assessment: TopicAssessment, *, allow_unsafe: bool) -> None:
    """Raise ``UnsafeTopicError`` for an unsafe topic unless allowed; warn otherwise."""
    if assessment.partitions != 1:
        raise UnsafeTopicError(
            f"event topic {topic!r} has {assessment.partitions} partitions; the store needs "
            "exactly 1 (one partition is one global order, the notification order). "
            "There is no override: use another topic."
        )
    if assessment.unsafe:
        found = ", ".join(assessment.unsafe)
        if not allow_unsafe:
            raise UnsafeTopicError(
                f"event topic {topic!r} could lose events: {found} (the store needs "
                "retention.ms=-1, retention.bytes=-1, cleanup.policy=delete). Fix the topic, "
                f"or set {KAFKA_ALLOW_UNSAFE_TOPIC}=true to start anyway."
            )
        log.warning(
            "event topic %r could lose events (%s): allowed by %s",
            topic,
            found,
            KAFKA_ALLOW_UNSAFE_TOPIC,
        )
    if assessment.unknown:
        log.warning(
            "event topic %r: the broker does not report %s; cannot check they keep events",
            topic,
            ", ".join(assessment.unknown),
        )


def ensure_topics(settings: KafkaSettings) -> None:
    """Create missing topics, then check the event topic. Raises
    ``StoreUnavailableError`` if the broker cannot be reached, ``UnsafeTopicError``
    for an unsafe event topic, ``OSError`` for a missing topic when creation is off."""
    aux = {"retention.ms": str(settings.aux_retention_ms), "cleanup.policy": "delete"}
    wanted: dict[str, dict[str, str]] = {
        settings.topic: EVENT_TOPIC_CONFIGS,
        settings.leases_topic: EVENT_TOPIC_CONFIGS,
        settings.requests_topic: aux,
        settings.replies_topic: aux,
    }
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=settings.bootstrap_servers,
            client_id=f"{settings.writer_id}-admin",
            request_timeout_ms=int(settings.request_timeout * 1000),
            bootstrap_timeout_ms=int(settings.startup_timeout * 1000),
            reconnect_backoff_max_ms=1000,
        )
    except KafkaError as e:
        raise StoreUnavailableError(f"Kafka at {settings.bootstrap_servers}: {e}") from e
    try:
        existing = partition_counts(admin, list(wanted))
        for name, configs in wanted.items():
            if name in existing:
                continue
            if not settings.create_topics:
                raise OSError(f"topic {name!r} does not exist (KAFKA_CREATE_TOPICS is off)")
            _create(admin, name, configs)
            log.info("created topic %r with %s", name, configs)
        partitions = partition_counts(admin, [settings.topic]).get(settings.topic, 1)
        check_event_topic(
            settings.topic,
            assess_event_topic(topic_configs(admin, settings.topic), partitions),
            allow_unsafe=settings.allow_unsafe_topic,
        )
    except KafkaError as e:
        raise StoreUnavailableError(f"Kafka at {settings.bootstrap_servers}: {e}") from e
    finally:
        admin.close()


def topic_exists(settings: KafkaSettings, timeout: float) -> bool:
    """Whether the event topic exists; ``StoreUnavailableError`` if no answer."""
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=settings.bootstrap_servers,
            client_id=f"{settings.writer_id}-admin",
            request_timeout_ms=int(timeout * 1000),
            bootstrap_timeout_ms=int(timeout * 1000),
            reconnect_backoff_max_ms=1000,
        )
    except KafkaError as e:
        raise StoreUnavailableError(f"Kafka at {settings.bootstrap_servers}: {e}") from e
    try:
        return settings.topic in partition_counts(admin, [settings.topic])
    except KafkaError as e:
        raise StoreUnavailableError(f"Kafka at {settings.bootstrap_servers}: {e}") from e
    finally:
        admin.close()


def _create(admin: Any, name: str, configs: dict[str, str]) -> None:
    try:
        admin.create_topics(
            {name: {"num_partitions": 1, "replication_factor": -1, "configs": configs}},
            wait_for_metadata=True,
        )
    except TopicAlreadyExistsError:
        pass  # another instance created it meanwhile


def partition_counts(admin: Any, names: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for topic in admin.describe_topics(names):
        if topic.get("error_code", 0) == 0 and topic.get("partitions"):
            counts[str(topic["name"])] = len(topic["partitions"])
    return counts


def topic_configs(admin: Any, name: str) -> dict[str, str | None]:
    """The topic's effective configs, defaults included (``{}`` if unreported)."""
    answer = admin.describe_configs([ConfigResource("TOPIC", name)], config_filter="all")
    entries = answer.get("topic", {}).get(name, {})
    return {key: (entry or {}).get("value") for key, entry in entries.items()}
