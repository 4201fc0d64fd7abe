"""Creating the topics, and refusing a topic the store cannot work with.

The event topic is the system of record: it is created with infinite retention
(``retention.ms=-1``, ``retention.bytes=-1``) and ``cleanup.policy=delete`` (never
compacted), with one partition, because one partition gives one global order and
that order is the notification order. Every topic is created explicitly, with an
admin request, before any other request names it: some brokers create a missing topic
that a client merely asks about (Tansu does, with 4 partitions, whatever the client's
``allow_auto_create_topics``). An existing topic with more than one partition, or an
event topic with finite retention or compaction, is refused (``UnsafeTopicError``,
naming the topic, what is wrong and the command that fixes it; finite retention may be
allowed with ``KAFKA_ALLOW_UNSAFE_TOPIC``); settings the broker does not report are
logged as unknown, not refused.
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


def check_event_topic(
    topic: str, assessment: TopicAssessment, *, allow_unsafe: bool, bootstrap: str = "<broker>"
) -> None:
    """Raise ``UnsafeTopicError`` for an unsafe topic unless allowed; warn otherwise."""
    check_partitions(topic, assessment.partitions, bootstrap)
    if assessment.unsafe:
        found = ", ".join(assessment.unsafe)
        if not allow_unsafe:
            raise UnsafeTopicError(
                f"event topic {topic!r} could lose events: {found} (the store needs "
                "retention.ms=-1, retention.bytes=-1, cleanup.policy=delete). Fix the topic: "
                f"kafka-configs.sh --bootstrap-server {bootstrap} --alter --entity-type topics "
                f"--entity-name {topic} --add-config "
                "retention.ms=-1,retention.bytes=-1,cleanup.policy=delete "
                f"(or set {KAFKA_ALLOW_UNSAFE_TOPIC}=true to start anyway)."
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


def check_partitions(topic: str, partitions: int, bootstrap: str = "<broker>") -> None:
    """Refuse a topic of the store with other than one partition, naming the likely
    cause (a broker that creates topics a client asks about) and the fix."""
    if partitions == 1:
        return
    raise UnsafeTopicError(
        f"topic {topic!r} has {partitions} partitions; the store needs exactly 1 (one "
        "partition is one global order, the notification order), and there is no override. "
        "A broker that creates a missing topic when a client asks for its metadata makes "
        "such topics (Tansu does, with 4 partitions: kcat -L -t, a consumer or a producer "
        "before the engine's first start). If it holds nothing you need, delete it and start "
        f"again, and the engine creates it right: kafka-topics.sh --bootstrap-server "
        f"{bootstrap} --delete --topic {topic}. Otherwise set KAFKA_TOPIC to another topic."
    )


def wanted_topics(settings: KafkaSettings) -> dict[str, dict[str, str]]:
    """Every topic of the store, with the configs it is created with."""
    aux = {"retention.ms": str(settings.aux_retention_ms), "cleanup.policy": "delete"}
    return {
        settings.topic: EVENT_TOPIC_CONFIGS,
        settings.leases_topic: EVENT_TOPIC_CONFIGS,
        settings.requests_topic: aux,
        settings.replies_topic: aux,
    }


def ensure_topics(settings: KafkaSettings) -> None:
    """Create missing topics, then check them. Raises ``StoreUnavailableError`` if
    the broker cannot be reached, ``UnsafeTopicError`` for a topic the store cannot
    work with, ``OSError`` for a missing topic when creation is off."""
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
        ensure_topics_with(admin, settings)
    except KafkaError as e:
        raise StoreUnavailableError(f"Kafka at {settings.bootstrap_servers}: {e}") from e
    finally:
        admin.close()


def ensure_topics_with(admin: Any, settings: KafkaSettings) -> None:
    """``ensure_topics`` with a given admin client. Creation comes first: a create
    request never makes a topic with the broker's defaults, and an existing topic
    only answers that it exists; then every topic is described and checked."""
    wanted = wanted_topics(settings)
    if settings.create_topics:
        for name, configs in wanted.items():
            if _create(admin, name, configs):
                log.info("created topic %r with %s", name, configs)
    existing = partition_counts(admin, list(wanted))
    for name in wanted:
        if name not in existing:
            if not settings.create_topics:
                raise OSError(
                    f"topic {name!r} does not exist (KAFKA_CREATE_TOPICS is off): create it "
                    f"with 1 partition, or set KAFKA_CREATE_TOPICS=true"
                )
            raise StoreUnavailableError(f"topic {name!r} was created but is not yet described")
        check_partitions(name, existing[name], settings.bootstrap_servers)
    check_event_topic(
        settings.topic,
        assess_event_topic(topic_configs(admin, settings.topic), existing[settings.topic]),
        allow_unsafe=settings.allow_unsafe_topic,
        bootstrap=settings.bootstrap_servers,
    )


def _create(admin: Any, name: str, configs: dict[str, str]) -> bool:
    """Create ``name`` with one partition; False if it exists already."""
    try:
        admin.create_topics(
            {name: {"num_partitions": 1, "replication_factor": -1, "configs": configs}},
            wait_for_metadata=True,
        )
    except TopicAlreadyExistsError:
        return False  # created before, or by another instance meanwhile
    return True


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
