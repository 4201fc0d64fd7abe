"""Kafka as the event store: an eventsourcing persistence module.

Select it with ``PERSISTENCE_MODULE=engine.stores.kafka.recorder`` and set
``KAFKA_BOOTSTRAP_SERVERS`` (see ``kafka_settings`` for every key, ``docs/kafka.md``
for the design and its guarantees). The topic is the system of record; reads are
served from a local SQLite cache of it; appends go through one elected writer.

Tracking records, process-recorder events and snapshots (any aggregate recorder
``purpose`` other than ``events``) are local state in SQLite
(``KAFKA_LOCAL_DB_PATH``): they are derived from the topic and rebuildable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    IntegrityError,
    ListenNotifySubscription,
    Notification,
    ProcessRecorder,
    StoredEvent,
    Subscription,
)
from eventsourcing.sqlite import (
    SQLiteAggregateRecorder,
    SQLiteDatastore,
    SQLiteProcessRecorder,
    SQLiteTrackingRecorder,
)
from eventsourcing.utils import Environment, EnvType, resolve_topic, strtobool

from engine.stores.conditions import (
    ConditionalRecorder,
    Conditions,
    failed,
    next_versions,
    read_only,
)
from engine.stores.kafka import settings as keys
from engine.stores.kafka.codec import EventRow, from_row, to_row
from engine.stores.kafka.errors import CacheDivergedError, StoreUnavailableError, UnsafeTopicError
from engine.stores.kafka.log import KafkaEventLog
from engine.stores.kafka.settings import KafkaSettings
from engine.stores.kafka.tailer import CatchUpProgress, Progress

__all__ = [
    "CacheDivergedError",
    "CatchUpProgress",
    "KafkaAggregateRecorder",
    "KafkaApplicationRecorder",
    "KafkaFactory",
    "StoreUnavailableError",
    "UnsafeTopicError",
]


class KafkaAggregateRecorder(AggregateRecorder):
    """Stored events in one Kafka topic, read back byte for byte from its cache.

    ``insert_events`` records all the given events in one Kafka transaction or none
    of them, and returns only once they are committed and readable here. It raises
    ``IntegrityError`` if an (originator id, version) is already recorded (nothing is
    recorded then), ``StoreUnavailableError`` if the broker cannot confirm the append
    before ``KAFKA_APPEND_TIMEOUT_MS``, ``DataError`` for events too large for Kafka.
    """

    def __init__(self, log: KafkaEventLog) -> None:
        self.log = log
        self.originator_id_type = log.settings.originator_id_type

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        self._insert(stored_events, kwargs.get("conditions"))
        return None

    def _insert(
        self, stored_events: Sequence[StoredEvent], conditions: Conditions | None = None
    ) -> list[int]:
        if not stored_events:
            return []
        rows = [to_row(e, self.originator_id_type) for e in stored_events]
        keys = [(r.originator_id, r.originator_version) for r in rows]
        if len(set(keys)) != len(keys):
            raise IntegrityError("the append repeats an aggregate version")
        # The cache is a prefix of the log: a version it holds is taken for sure.
        taken = self.log.cache.existing(keys)
        if taken:
            oid, version = min(taken)
            raise IntegrityError(f"aggregate {oid} version {version} is already recorded")
        # A condition holds while the version after it is free; the writer checks it
        # again in the batch that commits the append.
        free = sorted(next_versions(read_only(conditions, stored_events)))
        moved = self.log.cache.existing(free)
        if moved:
            oid, version = min(moved)
            raise failed(oid, version - 1)
        return self.log.notification_ids(self.log.append(rows, free))

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        rows = self.log.cache.select_events(
            self._key(originator_id), gt=gt, lte=lte, desc=desc, limit=limit
        )
        return [from_row(r, self.originator_id_type) for r in rows]

    def _key(self, originator_id: UUID | str) -> str:
        if self.originator_id_type == "uuid" and not isinstance(originator_id, UUID):
            try:
                return str(UUID(str(originator_id)))
            except ValueError:
                return str(originator_id)
        return str(originator_id)


class KafkaApplicationRecorder(KafkaAggregateRecorder, ApplicationRecorder, ConditionalRecorder):
    """An aggregate recorder whose events also form the application sequence.

    Notification ids are 1 + the number of event records before the event in the
    topic: strictly increasing in commit order, and identical in every cache of the
    topic. ``insert_events`` returns them (read-your-writes). Reads never touch the
    broker: with the broker down they keep answering from the cache.
    """

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        return self._insert(stored_events, kwargs.get("conditions"))

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        found = self.log.cache.select_notifications(
            start, limit, stop, topics, inclusive_of_start=inclusive_of_start
        )
        return [self._notification(n, row) for n, row in found]

    def max_notification_id(self) -> int | None:
        return self.log.cache.max_notification_id()

    def position_of(self, originator_id: UUID | str, version: int) -> int | None:
        """The notification id of one stored event, or None if it is not (yet) cached."""
        return self.log.cache.notification_id(self._key(originator_id), version)

    def wait_for_position(self, position: int, timeout: float) -> bool:
        """Wait until reads here hold every event up to notification id ``position``
        (one another server returned, say); False if not within ``timeout`` seconds."""
        return self.log.cache.wait_for_notification(position, timeout)

    def catch_up(self, timeout: float) -> bool:
        """Reads trail the topic by the tailer's lag: wait until the cache holds what
        the topic holds now (False if not within ``timeout`` seconds). A command that
        lost a race because this process had not yet read the winner calls it, then
        decides again (read-your-writes across servers)."""
        return self.log.catch_up(timeout)

    @property
    def diverged(self) -> CacheDivergedError | None:
        """Why this recorder no longer serves the topic's history (its reads and
        appends raise it), if it does not: the topic diverged from the cache."""
        return self.log.cache.diverged

    @property
    def head(self) -> int:
        """The cache's last notification id, also once diverged (for health)."""
        return self.log.cache.head

    def check_serving(self) -> None:
        """Raise ``CacheDivergedError`` if the topic diverged from the cache."""
        self.log.cache.check_serving()

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        return KafkaSubscription(recorder=self, gt=gt, topics=topics)

    def _notification(self, notification_id: int, row: EventRow) -> Notification:
        event = from_row(row, self.originator_id_type)
        return Notification(
            id=notification_id,
            originator_id=event.originator_id,
            originator_version=event.originator_version,
            topic=event.topic,
            state=event.state,
        )


class KafkaSubscription(ListenNotifySubscription[KafkaApplicationRecorder]):
    """Notifications after ``gt``, then new ones as the cache takes them in."""

    def __init__(
        self,
        recorder: KafkaApplicationRecorder,
        gt: int | None = None,
        topics: Sequence[str] = (),
    ) -> None:
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._recorder.log.cache.listen(self._has_been_notified)

    def stop(self) -> None:
        super().stop()
        self._recorder.log.cache.unlisten(self._has_been_notified)


class KafkaFactory(InfrastructureFactory[SQLiteTrackingRecorder]):
    """Builds Kafka-backed event recorders and local SQLite tracking recorders.

    Construction reads and checks the settings (``OSError`` names a missing or bad
    key). The first recorder creates the topics if needed (``UnsafeTopicError`` for an
    event topic that could lose events) and brings the cache up to date, reporting
    progress through logging and through the callable named by
    ``KAFKA_PROGRESS_TOPIC``; it raises ``StoreUnavailableError`` if the broker
    cannot be reached within ``KAFKA_STARTUP_TIMEOUT_MS``.
    """

    KAFKA_BOOTSTRAP_SERVERS = keys.KAFKA_BOOTSTRAP_SERVERS
    KAFKA_TOPIC = keys.KAFKA_TOPIC
    KAFKA_DATA_DIR = keys.KAFKA_DATA_DIR
    KAFKA_CACHE_PATH = keys.KAFKA_CACHE_PATH
    KAFKA_LOCAL_DB_PATH = keys.KAFKA_LOCAL_DB_PATH
    KAFKA_ALLOW_UNSAFE_TOPIC = keys.KAFKA_ALLOW_UNSAFE_TOPIC
    KAFKA_PROGRESS_TOPIC = keys.KAFKA_PROGRESS_TOPIC
    CREATE_TABLE = "CREATE_TABLE"

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        self.settings = KafkaSettings.from_env(self.env)
        self._log: KafkaEventLog | None = None
        self._local: SQLiteDatastore | None = None

    def event_log(self) -> KafkaEventLog:
        """The factory's one view of the event topic, shared by its recorders."""
        if self._log is None:
            self._log = KafkaEventLog(self.settings, self._progress())
        return self._log

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        if purpose == "events":
            return KafkaAggregateRecorder(self.event_log())
        # Snapshots and other derived records stay local: rebuildable from the topic.
        recorder = SQLiteAggregateRecorder(self._datastore(), events_table_name=f"stored_{purpose}")
        if self._create_tables():
            recorder.create_table()
        return recorder

    def application_recorder(self) -> ApplicationRecorder:
        topic = self.env.get(self.APPLICATION_RECORDER_TOPIC)
        cls: type[KafkaApplicationRecorder] = (
            resolve_topic(topic) if topic else KafkaApplicationRecorder
        )
        assert issubclass(cls, KafkaApplicationRecorder)
        return cls(self.event_log())

    def tracking_recorder(
        self, tracking_recorder_class: type[SQLiteTrackingRecorder] | None = None
    ) -> SQLiteTrackingRecorder:
        if tracking_recorder_class is None:
            topic = self.env.get(self.TRACKING_RECORDER_TOPIC)
            tracking_recorder_class = resolve_topic(topic) if topic else SQLiteTrackingRecorder
        assert tracking_recorder_class is not None
        assert issubclass(tracking_recorder_class, SQLiteTrackingRecorder)
        recorder = tracking_recorder_class(datastore=self._datastore())
        if self._create_tables():
            recorder.create_table()
        return recorder

    def process_recorder(self) -> ProcessRecorder:
        recorder = SQLiteProcessRecorder(self._datastore())
        if self._create_tables():
            recorder.create_table()
        return recorder

    def close(self) -> None:
        log, self._log = self._log, None
        if log is not None:
            log.close()
        local, self._local = self._local, None
        if local is not None:
            local.close()

    def _datastore(self) -> SQLiteDatastore:
        if self._local is None:
            path = self.settings.local_db_path
            path.parent.mkdir(parents=True, exist_ok=True)
            self._local = SQLiteDatastore(
                str(path), originator_id_type=self.settings.originator_id_type
            )
        return self._local

    def _create_tables(self) -> bool:
        return bool(strtobool(self.env.get(self.CREATE_TABLE, "yes") or "yes"))

    def _progress(self) -> Progress | None:
        topic = self.settings.progress_topic
        if not topic:
            return None
        progress: Progress = resolve_topic(topic)
        return progress
