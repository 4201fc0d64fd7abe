"""Every configuration name in one place (environment variables, CLI flags override).

| variable | default | meaning |
| --- | --- | --- |
| TICKETING_DATA_DIR | ./data | SQLite event store, views, Kafka cache |
| TICKETING_HOST / TICKETING_PORT | 127.0.0.1 / 8000 | where `ticketing serve` listens |
| TICKETING_BOOTSTRAP_ADMIN_KEY | (generated) | admin API key on first start (>= 24 chars) |
| TICKETING_REOPEN_WINDOW_DAYS | 7 | how long after resolution a ticket may be reopened |
| TICKETING_PRIORITY_MATRIX | ITIL default | JSON {"impact/urgency": "P1".."P4"} |
| TICKETING_MAX_BODY_BYTES | 65536 | larger request bodies get 413 |
| TICKETING_WAIT_TIMEOUT_S | 5 | longest `min_position` wait before 504 |
| TICKETING_ACCESS_LOG | false | log every request line (costs throughput) |
| TICKETING_PROJECTIONS | in-process | `in-process` or `off` (run `ticketing project`) |
| TICKETING_CLOCK | in-process | SLA clock and routing process: `in-process` or `off` |
| TICKETING_CLOCK_INTERVAL_S | 1 | seconds between SLA clock ticks |
| TICKETING_KEY_STORE | data_dir/keys.sqlite | data subjects' keys; share it between processes |
| TICKETING_SIGNING_KEY | (data_dir/signing.key) | base64 Ed25519 seed that signs checkpoints |
| TICKETING_CHECKPOINT_INTERVAL_S | 3600 | seconds between signed checkpoints (0: on demand) |
| KAFKA_BOOTSTRAP_SERVERS | (unset) | set it to use the Kafka event store |
| KAFKA_TOPIC | ticketing.events | the topic that is the system of record |
| TICKETING_DESK | (unset) | a desk (tenant): its topic is `ticketing.<desk>.events` |
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from engine.domain.priority import Priority, PriorityMatrix

MIN_ADMIN_KEY_LENGTH = 24


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TICKETING_", extra="ignore")

    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    port: int = 8000
    bootstrap_admin_key: str | None = None
    reopen_window_days: float = Field(default=7.0, gt=0)
    priority_matrix: str | None = None
    max_body_bytes: int = Field(default=65536, ge=1024)
    wait_timeout_s: float = Field(default=5.0, gt=0)
    projections: str = "in-process"
    access_log: bool = False
    signing_key: str | None = None
    key_store: Path | None = None
    clock: str = "in-process"
    clock_interval_s: float = Field(default=1.0, gt=0)
    checkpoint_interval_s: float = Field(default=3600.0, ge=0)
    metrics_token: str | None = None  # a bearer token that may scrape /metrics only

    kafka_bootstrap_servers: str | None = Field(
        default=None, validation_alias="KAFKA_BOOTSTRAP_SERVERS"
    )
    kafka_topic: str | None = Field(default=None, validation_alias="KAFKA_TOPIC")
    desk: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")

    @field_validator("bootstrap_admin_key", "metrics_token")
    @classmethod
    def _strong_secret(cls, value: str | None, info: ValidationInfo) -> str | None:
        """A short admin key or scrape token is refused: they are bearer secrets."""
        if not value:
            return None
        if len(value) < MIN_ADMIN_KEY_LENGTH:
            raise ValueError(
                f"TICKETING_{str(info.field_name).upper()} must be at least "
                f"{MIN_ADMIN_KEY_LENGTH} characters: a short secret is refused"
            )
        return value

    @field_validator("clock")
    @classmethod
    def _clock_mode(cls, value: str) -> str:
        if value not in ("in-process", "off"):
            raise ValueError("TICKETING_CLOCK is 'in-process' or 'off'")
        return value

    @field_validator("projections")
    @classmethod
    def _projection_mode(cls, value: str) -> str:
        if value not in ("in-process", "off"):
            raise ValueError("TICKETING_PROJECTIONS is 'in-process' or 'off'")
        return value

    def matrix(self) -> PriorityMatrix:
        if not self.priority_matrix:
            return PriorityMatrix()
        cells = {k: Priority(v) for k, v in json.loads(self.priority_matrix).items()}
        return PriorityMatrix(cells=cells)

    @property
    def event_topic(self) -> str:
        """The desk's event topic: KAFKA_TOPIC, else one per desk, else the default."""
        if self.kafka_topic:
            return self.kafka_topic
        return f"ticketing.{self.desk}.events" if self.desk else "ticketing.events"

    @property
    def uses_kafka(self) -> bool:
        return bool(self.kafka_bootstrap_servers)

    def store_env(self) -> dict[str, str]:
        """The eventsourcing environment that selects and configures the event store."""
        if self.uses_kafka:
            assert self.kafka_bootstrap_servers is not None
            return {
                "PERSISTENCE_MODULE": "engine.stores.kafka.recorder",
                "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers,
                "KAFKA_TOPIC": self.event_topic,
                "KAFKA_CACHE_PATH": str(self.data_dir / "kafka-cache.sqlite"),
            }
        return {
            "PERSISTENCE_MODULE": "engine.stores.sqlite",
            "SQLITE_DBNAME": str(self.data_dir / "events.sqlite"),
            "SQLITE_LOCK_TIMEOUT": "10",
        }
