"""Configuration of the Kafka event store: every key, its default, and validation.

Keys are read through eventsourcing's ``Environment``, so each may be prefixed with
the application name (``TICKETING_KAFKA_TOPIC``) as the library's own keys may.
``docs/kafka.md`` documents every key for operators.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from eventsourcing.utils import Environment, strtobool

KAFKA_BOOTSTRAP_SERVERS = "KAFKA_BOOTSTRAP_SERVERS"
KAFKA_TOPIC = "KAFKA_TOPIC"
KAFKA_DATA_DIR = "KAFKA_DATA_DIR"
KAFKA_CACHE_PATH = "KAFKA_CACHE_PATH"
KAFKA_LOCAL_DB_PATH = "KAFKA_LOCAL_DB_PATH"
KAFKA_WRITER_ID = "KAFKA_WRITER_ID"
KAFKA_TRANSACTIONAL_ID = "KAFKA_TRANSACTIONAL_ID"
KAFKA_WRITER_GROUP_ID = "KAFKA_WRITER_GROUP_ID"
KAFKA_ALLOW_UNSAFE_TOPIC = "KAFKA_ALLOW_UNSAFE_TOPIC"
KAFKA_CREATE_TOPICS = "KAFKA_CREATE_TOPICS"
KAFKA_REQUEST_TIMEOUT_MS = "KAFKA_REQUEST_TIMEOUT_MS"
KAFKA_APPEND_TIMEOUT_MS = "KAFKA_APPEND_TIMEOUT_MS"
KAFKA_COMMIT_TIMEOUT_MS = "KAFKA_COMMIT_TIMEOUT_MS"
KAFKA_STARTUP_TIMEOUT_MS = "KAFKA_STARTUP_TIMEOUT_MS"
KAFKA_LEASE_TIMEOUT_MS = "KAFKA_LEASE_TIMEOUT_MS"
KAFKA_HEARTBEAT_INTERVAL_MS = "KAFKA_HEARTBEAT_INTERVAL_MS"
KAFKA_FETCH_MAX_WAIT_MS = "KAFKA_FETCH_MAX_WAIT_MS"
KAFKA_MAX_BATCH_EVENTS = "KAFKA_MAX_BATCH_EVENTS"
KAFKA_AUX_RETENTION_MS = "KAFKA_AUX_RETENTION_MS"
KAFKA_PROGRESS_TOPIC = "KAFKA_PROGRESS_TOPIC"
KAFKA_VERIFY_INTERVAL_MS = "KAFKA_VERIFY_INTERVAL_MS"
ORIGINATOR_ID_TYPE = "ORIGINATOR_ID_TYPE"

DEFAULT_TOPIC = "ticketing.events"


@dataclass(frozen=True)
class KafkaSettings:
    """Validated settings of one Kafka-backed event log (times in seconds)."""

    bootstrap_servers: str
    topic: str
    cache_path: Path
    local_db_path: Path
    writer_id: str
    transactional_id: str
    writer_group_id: str
    allow_unsafe_topic: bool = False
    create_topics: bool = True
    request_timeout: float = 3.0
    append_timeout: float = 5.0
    commit_timeout: float = 3.0
    startup_timeout: float = 60.0
    lease_timeout: float = 1.0
    heartbeat_interval: float = 1.0 / 6
    fetch_max_wait: float = 0.02
    max_batch_events: int = 5000
    aux_retention_ms: int = 24 * 3600 * 1000
    progress_topic: str | None = None
    verify_interval: float = 1.0
    originator_id_type: Literal["uuid", "text"] = "uuid"

    # The auxiliary topics: named after the event topic with a ``.__`` suffix (the
    # double underscore marks a topic internal, as Kafka's own ``__consumer_offsets``;
    # MirrorMaker 2's default exclusions skip such names), and every record on them
    # carries the ``ticketing.internal`` header (codec.py).

    @property
    def requests_topic(self) -> str:
        """Appends forwarded to the writer by instances that are not the writer."""
        return f"{self.topic}.__requests"

    @property
    def replies_topic(self) -> str:
        """The writer's answers to forwarded appends, and its heartbeats."""
        return f"{self.topic}.__replies"

    @property
    def leases_topic(self) -> str:
        """Claims and resignations of the writer role (kept forever, a few records)."""
        return f"{self.topic}.__leases"

    @classmethod
    def from_env(cls, env: Environment) -> KafkaSettings:
        """Read and check every key; raises ``OSError`` naming a missing or bad key."""
        bootstrap = (env.get(KAFKA_BOOTSTRAP_SERVERS) or "").strip()
        if not bootstrap:
            raise OSError(
                "Kafka bootstrap servers not found in environment with keys: "
                + ", ".join(env.create_keys(KAFKA_BOOTSTRAP_SERVERS))
            )
        topic = (env.get(KAFKA_TOPIC) or DEFAULT_TOPIC).strip()
        cache_path = _cache_path(env, topic)
        local_db = env.get(KAFKA_LOCAL_DB_PATH)
        local_db_path = (
            Path(local_db) if local_db else cache_path.with_name(f"{topic}.local.sqlite")
        )
        writer_prefix = env.get(KAFKA_WRITER_ID) or f"{os.uname().nodename}-{os.getpid()}"
        id_type = (env.get(ORIGINATOR_ID_TYPE) or "uuid").lower()
        if id_type not in ("uuid", "text"):
            raise OSError(f"Invalid {ORIGINATOR_ID_TYPE} '{id_type}', must be 'uuid' or 'text'")
        lease = _seconds(env, KAFKA_LEASE_TIMEOUT_MS, 1000)
        return cls(
            bootstrap_servers=bootstrap,
            topic=topic,
            cache_path=cache_path,
            local_db_path=local_db_path,
            # Unique per recorder instance, so two instances never share an identity.
            writer_id=f"{writer_prefix}-{uuid.uuid4().hex[:8]}",
            transactional_id=env.get(KAFKA_TRANSACTIONAL_ID) or f"{topic}.writer",
            writer_group_id=env.get(KAFKA_WRITER_GROUP_ID) or f"{topic}.writer",
            allow_unsafe_topic=_flag(env, KAFKA_ALLOW_UNSAFE_TOPIC, False),
            create_topics=_flag(env, KAFKA_CREATE_TOPICS, True),
            request_timeout=_seconds(env, KAFKA_REQUEST_TIMEOUT_MS, 3000),
            append_timeout=_seconds(env, KAFKA_APPEND_TIMEOUT_MS, 5000),
            commit_timeout=_seconds(env, KAFKA_COMMIT_TIMEOUT_MS, 3000),
            startup_timeout=_seconds(env, KAFKA_STARTUP_TIMEOUT_MS, 60000),
            lease_timeout=lease,
            heartbeat_interval=_seconds(env, KAFKA_HEARTBEAT_INTERVAL_MS, int(lease * 1000 / 6)),
            fetch_max_wait=_seconds(env, KAFKA_FETCH_MAX_WAIT_MS, 20),
            max_batch_events=int(_number(env, KAFKA_MAX_BATCH_EVENTS, 5000)),
            aux_retention_ms=int(_number(env, KAFKA_AUX_RETENTION_MS, 24 * 3600 * 1000)),
            progress_topic=env.get(KAFKA_PROGRESS_TOPIC) or None,
            verify_interval=_seconds(env, KAFKA_VERIFY_INTERVAL_MS, 1000),
            originator_id_type="uuid" if id_type == "uuid" else "text",
        ).checked()

    def checked(self) -> KafkaSettings:
        """Refuse combinations under which an append could outlive its caller."""
        if self.commit_timeout >= self.append_timeout:
            raise OSError(
                f"{KAFKA_COMMIT_TIMEOUT_MS} must be less than {KAFKA_APPEND_TIMEOUT_MS}: "
                "an append must be decided before its caller gives up"
            )
        if self.heartbeat_interval * 2 > self.lease_timeout:
            raise OSError(
                f"{KAFKA_HEARTBEAT_INTERVAL_MS} must be at most half of {KAFKA_LEASE_TIMEOUT_MS}"
            )
        return self


def _cache_path(env: Environment, topic: str) -> Path:
    explicit = env.get(KAFKA_CACHE_PATH)
    if explicit:
        return Path(explicit)
    data_dir = env.get(KAFKA_DATA_DIR)
    if data_dir:
        return Path(data_dir) / f"{topic}.cache.sqlite"
    raise OSError(
        "Kafka cache path not found in environment: set one of "
        + ", ".join(env.create_keys(KAFKA_CACHE_PATH) + env.create_keys(KAFKA_DATA_DIR))
    )


def _number(env: Environment, key: str, default: float) -> float:
    raw = (env.get(key) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise OSError(f"Kafka setting {key} must be a number: {raw!r}") from None
    if value <= 0:
        raise OSError(f"Kafka setting {key} must be positive: {raw!r}")
    return value


def _seconds(env: Environment, key: str, default_ms: int) -> float:
    return _number(env, key, default_ms) / 1000.0


def _flag(env: Environment, key: str, default: bool) -> bool:
    raw = (env.get(key) or "").strip()
    if not raw:
        return default
    try:
        return bool(strtobool(raw))
    except ValueError:
        raise OSError(f"Kafka setting {key} must be true or false: {raw!r}") from None
