"""The tailing consumer: copies the event topic into the cache and follows the
writer's coordination records.

One read_committed consumer with manual assignment reads three partitions: the
events (from the cache's position), the leases (from the beginning: a few records)
and the replies (from the end: only answers to appends made from now on matter).
Whether it has caught up is decided with what fetches return: the last stable
offset (the end of what a read_committed reader can read: a transaction left open by
a killed writer holds it back until the next writer fences it), else the high
watermark; never with ``end_offsets`` (which some brokers answer wrongly).

When it (re)connects, after a fetch error, every ``KAFKA_VERIFY_INTERVAL_MS``, and
before taking in new event records once its last check is older than that, it checks
that the topic still holds the cache's anchor (``anchor.py``); the cache checks every
new record against its chain. On a mismatch the cache diverges and the tailer stops.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kafka import TopicPartition
from kafka.errors import KafkaError, OffsetOutOfRangeError

from engine.stores.kafka.anchor import AnchorCheck, probe_log_end
from engine.stores.kafka.cache import EventCache
from engine.stores.kafka.clients import FetchWatch, discard, new_consumer
from engine.stores.kafka.codec import (
    EventRow,
    LeaseRecord,
    RecordFormatError,
    Reply,
    row_from_record,
)
from engine.stores.kafka.errors import CacheDivergedError, Divergence, StoreUnavailableError
from engine.stores.kafka.lease import LeaseView
from engine.stores.kafka.settings import KafkaSettings

log = logging.getLogger("engine.stores.kafka")

__all__ = ["CatchUpProgress", "Progress", "Tailer", "probe_log_end"]

PROGRESS_EVERY_RECORDS = 10_000
PROGRESS_EVERY_SECONDS = 1.0
RECONNECT_WAIT = 0.2


@dataclass(frozen=True)
class CatchUpProgress:
    """How far the cache has copied the topic: ``events`` cached so far, the next
    ``offset`` to read and the topic's ``end`` (high watermark, None until known)."""

    topic: str
    events: int
    offset: int
    end: int | None
    caught_up: bool


Progress = Callable[[CatchUpProgress], None]


class Tailer(threading.Thread):
    """Feeds the cache, the lease view and the pending forwarded appends.

    ``caught_up`` is set once the cache and the lease view have reached the ends
    the broker reported; ``diverged`` is the cache's error once the topic turns out
    not to hold the cached history.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        cache: EventCache,
        lease: LeaseView,
        on_reply: Callable[[Reply], None],
        progress: Progress | None = None,
    ) -> None:
        super().__init__(name=f"kafka-tailer-{settings.topic}", daemon=True)
        self.settings = settings
        self.cache = cache
        self.lease = lease
        self.on_reply = on_reply
        self.progress = progress
        self.caught_up = threading.Event()
        self.failure: BaseException | None = None
        self.readable_end: int | None = None  # the topic's readable end, last seen
        self._halt = threading.Event()
        self._events = TopicPartition(settings.topic, 0)
        self._leases = TopicPartition(settings.leases_topic, 0)
        self._replies = TopicPartition(settings.replies_topic, 0)
        self._last_report = 0.0
        self._reported_records = 0
        self._held: list[tuple[int, EventRow | None]] = []  # records awaiting their marker
        self._added = 0
        self._stable: dict[Any, int] = {}  # last stable offsets, from the fetches
        self._anchor = AnchorCheck(settings, cache)
        self._verified_at: float | None = None  # monotonic time of the last good check
        self._watch: FetchWatch | None = None
        self._replies_position: int | None = None  # the next reply to read
        self.reconnects = 0

    @property
    def diverged(self) -> CacheDivergedError | None:
        return self.cache.diverged

    def stop(self) -> None:
        self._halt.set()

    def verify(self) -> bool:
        """Check the cache's anchor against the topic now; True if it holds. A
        mismatch diverges the cache; no answer leaves the check due."""
        if self.cache.next_offset == 0 and self.cache.last_record() is None:
            self._verified_at = time.monotonic()  # nothing cached: nothing to diverge from
            return True
        try:
            self._anchor.check(self.settings.request_timeout)
        except CacheDivergedError:
            return False
        except StoreUnavailableError as e:
            log.warning("tailer of topic %r: anchor not checked: %s", self.settings.topic, e)
            self._verified_at = None
            return False
        self._verified_at = time.monotonic()
        return True

    def _verification_due(self) -> bool:
        last = self._verified_at
        return last is None or time.monotonic() - last >= self.settings.verify_interval

    def run(self) -> None:
        try:
            while not self._halt.is_set() and self.diverged is None:
                consumer = self._connect()
                if consumer is None:
                    self._halt.wait(RECONNECT_WAIT)
                    continue
                self._verified_at = None  # every (re)connection checks the anchor first
                try:
                    while not self._halt.is_set() and self.diverged is None:
                        if self._verification_due() and not self.verify():
                            if self.diverged is not None:
                                break
                            self._halt.wait(0.2)  # no answer: follow the leases, check again
                        self._poll_once(consumer)
                        if self._watch is not None and (
                            self._watch.silent_for() > self.settings.request_timeout
                        ):
                            # No fetch answered for that long: the consumer is wedged
                            # or cut off. A new one resumes where the cache stands.
                            log.warning(
                                "tailer of topic %r: no fetch answered for %.1fs, reconnecting",
                                self.settings.topic,
                                self._watch.silent_for(),
                            )
                            self.reconnects += 1
                            break
                finally:
                    discard(consumer)
        except CacheDivergedError:
            pass  # the cache keeps the cause; the recorder reports it
        except BaseException as e:  # the recorder reports it on the next call
            self.failure = e
            log.exception("tailer of topic %r stopped", self.settings.topic)

    def _connect(self) -> Any:
        """A new consumer, positioned where this process has read to: the events
        at the cache's position, the leases at the lease view's, the replies after
        the last one read (from the end at the first connection). None if the
        broker does not answer within the request timeout."""
        try:
            consumer = new_consumer(
                self.settings,
                "tailer",
                bootstrap_timeout_ms=int(self.settings.request_timeout * 1000),
            )
        except KafkaError as e:
            log.warning("tailer of topic %r: cannot connect: %s", self.settings.topic, e)
            return None
        self._watch = FetchWatch(consumer)
        self._stable = self._watch.stable
        self._held = []  # read again from the cache's position
        consumer.assign([self._events, self._leases, self._replies])
        if self.cache.next_offset > 0:
            consumer.seek(self._events, self.cache.next_offset)
        else:
            consumer.seek_to_beginning(self._events)
        if self.lease.position > 0:
            consumer.seek(self._leases, self.lease.position)
        else:
            consumer.seek_to_beginning(self._leases)
        if self._replies_position is None:
            consumer.seek_to_end(self._replies)
        else:
            consumer.seek(self._replies, self._replies_position)
        return consumer

    def _poll_once(self, consumer: Any) -> None:
        try:
            batches = consumer.poll(timeout_ms=100)
        except OffsetOutOfRangeError as e:
            self._out_of_range(consumer, e)
            return
        except KafkaError as e:
            log.warning("tailer of topic %r: %s", self.settings.topic, e)
            self._verified_at = None  # a reconnection: check the anchor before going on
            self._halt.wait(0.5)
            return
        self._note_answers()
        self._take_events(consumer, batches.get(self._events, ()))
        for record in batches.get(self._leases, ()):
            try:
                self.lease.apply(LeaseRecord.decode(record.value), record.offset)
            except RecordFormatError as e:
                log.error("leases topic offset %d skipped: %s", record.offset, e)
        self.lease.advance(self._position(consumer, self._leases, self.lease.position))
        for record in batches.get(self._replies, ()):
            self._replies_position = record.offset + 1
            try:
                reply = Reply.decode(record.value)
            except RecordFormatError as e:
                log.error("replies topic offset %d skipped: %s", record.offset, e)
                continue
            if reply.kind == "heartbeat":
                self.lease.heartbeat(reply.writer, reply.epoch)
            else:
                self.on_reply(reply)
        self._check_caught_up(consumer)

    def _note_answers(self) -> None:
        """Tell the lease view when the broker last answered (see
        ``LeaseView.heard_from_broker``)."""
        answered = self._watch.answered_at() if self._watch is not None else None
        if answered is not None:
            self.lease.heard_from_broker(answered, self.settings.lease_timeout)

    def _take_events(self, consumer: Any, records: Any) -> None:
        """Cache whole transactions only, so that readers never see part of one.

        The writer is the topic's only producer, so a transaction's records have
        consecutive offsets and a commit marker follows them: a gap between offsets
        is a transaction boundary, and the records at the end of what was fetched
        are complete only once the position has passed their marker."""
        for record in records:
            try:
                row = row_from_record(
                    record.key, record.value, record.headers, self.settings.originator_id_type
                )
            except RecordFormatError as e:
                log.error("topic %r offset %d skipped: %s", self.settings.topic, record.offset, e)
                row = None
            self._held.append((record.offset, row))
        position = self._position(consumer, self._events, self.cache.next_offset)
        complete = self._held
        if self._held and self._held[-1][0] + 1 >= position:
            # The last run of consecutive offsets may still lack its commit marker.
            start = len(self._held) - 1
            while start > 0 and self._held[start - 1][0] + 1 == self._held[start][0]:
                start -= 1
            complete, self._held = self._held[:start], self._held[start:]
            position = self._held[0][0]
        else:
            self._held = []
        rows = [(o, r) for o, r in complete if r is not None]
        fresh = any(o >= self.cache.next_offset for o, _ in rows)
        if fresh and self._verification_due() and not self.verify():
            # Nothing new is taken in unless the topic was seen to hold the anchor
            # lately: after a pause, the records fetched may belong to another history.
            self._held = complete + self._held
            return
        added = self.cache.ingest(rows, position)
        self._added += added

    def _position(self, consumer: Any, tp: Any, default: int) -> int:
        position = consumer.position(tp, timeout_ms=0)
        return default if position is None else int(position)

    def _check_caught_up(self, consumer: Any) -> None:
        added, self._added = self._added, 0
        end = self._readable_end(consumer, self._events)
        leases_end = self._readable_end(consumer, self._leases)
        done = (
            end is not None
            and leases_end is not None
            and self.cache.next_offset >= end
            and self.lease.position >= leases_end
        )
        if done and not self.caught_up.is_set():
            self.caught_up.set()
            self._report(end, force=True)
        elif added:
            self._report(end, force=False)

    def _readable_end(self, consumer: Any, tp: Any) -> int | None:
        """Where a read_committed reader of ``tp`` stops for now: the last stable
        offset, which a transaction left open holds below the high watermark."""
        end = consumer.highwater(tp)
        stable = self._stable.get(tp)
        if end is None or stable is None:
            return None if end is None else int(end)
        return min(int(end), stable)

    def _report(self, end: int | None, *, force: bool) -> None:
        if end is not None:
            self.readable_end = end
        events = self.cache.head
        now = time.monotonic()
        if not force and (
            events - self._reported_records < PROGRESS_EVERY_RECORDS
            and now - self._last_report < PROGRESS_EVERY_SECONDS
        ):
            return
        self._last_report, self._reported_records = now, events
        status = CatchUpProgress(
            self.settings.topic, events, self.cache.next_offset, end, self.caught_up.is_set()
        )
        log.info(
            "cache of topic %r: %d events, offset %d of %s%s",
            status.topic,
            status.events,
            status.offset,
            "?" if end is None else end,
            " (caught up)" if status.caught_up else "",
        )
        if self.progress is not None:
            self.progress(status)

    def _out_of_range(self, consumer: Any, error: OffsetOutOfRangeError) -> None:
        partitions = set(error.args[0]) if error.args and isinstance(error.args[0], dict) else set()
        if self._replies in partitions or self._leases in partitions:
            consumer.seek_to_end(self._replies)
        if self._events in partitions or not partitions:
            if self.cache.next_offset == 0:
                consumer.seek_to_beginning(self._events)
                return
            self.cache.diverge(
                CacheDivergedError(
                    Divergence(
                        self.settings.topic,
                        str(self.cache.path),
                        f"the topic no longer has offset {self.cache.next_offset}, which the "
                        "cache has read up to: the broker lost its data, or the topic was "
                        "deleted and recreated",
                        offset=self.cache.next_offset,
                        cached_up_to=self.cache.next_offset,
                    )
                )
            )
