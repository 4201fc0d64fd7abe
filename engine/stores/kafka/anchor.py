"""The anchor check: does the topic still hold the history the cache copied?

The cache's anchor is its last cached event record. The topic still holds the cached
history if it holds that very record at that offset (same key, headers and value: same
event id and chain hash) and reaches at least as far as the cache has read. The record
the previous check found is looked at again as well, so that records taken in since
then are known to continue the same history. Every process checks when its tailer
(re)connects, after a fetch error, at a regular interval (``KAFKA_VERIFY_INTERVAL_MS``),
and before taking in new records once the last check is older than that (so a process
that was paused takes in nothing before checking); its writer checks before it takes
the role. Each new record is checked against its chain as the cache takes it in
(``lineage.py``). A mismatch diverges the cache (``CacheDivergedError``), and the
process stops serving that history.

Each check uses a consumer of its own, made for it: a fetch answered before the check
(a high watermark or a record from another moment) must never count as the topic now.
"""

from __future__ import annotations

import time
from typing import Any

from kafka import TopicPartition
from kafka.errors import KafkaError, OffsetOutOfRangeError

from engine.stores.kafka.cache import EventCache
from engine.stores.kafka.clients import close_quietly, new_consumer
from engine.stores.kafka.codec import EventRow, RecordFormatError, row_from_record
from engine.stores.kafka.errors import CacheDivergedError, Divergence, StoreUnavailableError
from engine.stores.kafka.lineage import mark_of
from engine.stores.kafka.settings import KafkaSettings

LOST = (
    "the broker lost its data, or the topic was deleted and recreated "
    "(and perhaps refilled with other records)"
)
Anchor = tuple[int, EventRow]


class AnchorCheck:
    """``check`` returns the topic's end (high watermark) as a fetch made now reports
    it; it raises ``CacheDivergedError`` (and diverges the cache) on a mismatch,
    ``StoreUnavailableError`` without an answer in time."""

    def __init__(self, settings: KafkaSettings, cache: EventCache) -> None:
        self.settings = settings
        self.cache = cache
        self._tp = TopicPartition(settings.topic, 0)
        self._verified: Anchor | None = None  # the anchor the last check found

    def check(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        cache = self.cache
        if cache.diverged is not None:
            raise CacheDivergedError(cache.diverged.divergence)
        last, read_up_to = cache.last_record(), cache.next_offset
        anchors = [a for a in (self._verified, last) if a is not None]
        if len(anchors) == 2 and anchors[0][0] == anchors[1][0]:
            anchors = anchors[1:]
        try:
            consumer = new_consumer(
                self.settings,
                "anchor",
                bootstrap_timeout_ms=max(1, int(timeout * 1000)),
                max_poll_records=1,
                max_partition_fetch_bytes=64 * 1024,
            )
        except KafkaError as e:
            raise StoreUnavailableError(f"Kafka at {self.settings.bootstrap_servers}: {e}") from e
        try:
            consumer.assign([self._tp])
            end: int | None = None
            for anchor in anchors:
                end = self._check_anchor(consumer, anchor, deadline)
            if end is None:  # nothing cached to compare: only how far the topic goes
                consumer.seek(self._tp, read_up_to)
                end = self._fetch(consumer, read_up_to, deadline)[1]
            if end < read_up_to:
                raise self._diverge(
                    f"the topic ends at offset {end}, before offset {read_up_to}, which the "
                    f"cache has read up to: {LOST}",
                    last,
                    end,
                )
            self._verified = last
            return end
        except KafkaError as e:
            raise StoreUnavailableError(f"Kafka at {self.settings.bootstrap_servers}: {e}") from e
        finally:
            close_quietly(consumer)

    def _check_anchor(self, consumer: Any, anchor: Anchor, deadline: float) -> int:
        offset, cached = anchor
        consumer.seek(self._tp, offset)
        record, end = self._fetch(consumer, offset, deadline)
        if record is None:
            raise self._diverge(
                f"the topic ends at offset {end}, before the cached record: {LOST}", anchor, end
            )
        try:
            found: EventRow | None = row_from_record(
                record.key, record.value, record.headers, self.settings.originator_id_type
            )
        except RecordFormatError:
            found = None
        if record.offset == offset and found == cached:
            return end
        found_id = mark_of(found).event_id if found is not None else None
        what = (f"event {found_id}" if found_id else "a record the cache cannot read") + (
            "" if record.offset == offset else f" (at offset {record.offset})"
        )
        raise self._diverge(
            f"the topic holds {what} where the cache holds event "
            f"{mark_of(cached).event_id or '(no event id)'}: {LOST}",
            anchor,
            end,
            found=found_id or what,
        )

    def _fetch(self, consumer: Any, offset: int, deadline: float) -> tuple[Any, int]:
        """The first record at or after ``offset`` (None if the topic ends before it)
        and the topic's end, from fetches this consumer made."""
        while time.monotonic() < deadline:
            try:
                batches = consumer.poll(timeout_ms=50)
            except OffsetOutOfRangeError:
                raise self._diverge(
                    f"the topic no longer has offset {offset}: {LOST}", self.cache.last_record()
                ) from None
            end = consumer.highwater(self._tp)
            first = next(iter(batches.get(self._tp, ())), None)
            if first is not None:
                return first, int(end if end is not None else first.offset + 1)
            if end is not None and end <= offset:
                return None, int(end)
        # A topic that is gone answers nothing here (Apache Kafka); Tansu makes it again,
        # empty, when asked, and the check finds it ends before the cache.
        raise StoreUnavailableError(f"no fetch from topic {self.settings.topic!r} answered in time")

    def _diverge(
        self, cause: str, anchor: Anchor | None, end: int | None = None, found: str | None = None
    ) -> CacheDivergedError:
        cache = self.cache
        error = CacheDivergedError(
            Divergence(
                self.settings.topic,
                str(cache.path),
                cause,
                offset=anchor[0] if anchor else cache.next_offset,
                cached=mark_of(anchor[1]).event_id if anchor else None,
                found=found,
                cached_up_to=cache.next_offset,
                topic_end=end,
            )
        )
        return cache.diverge(error)


def probe_log_end(settings: KafkaSettings, cache: EventCache, timeout: float) -> int:
    """The event partition's end, from a fetch made now by a new consumer, after
    checking the topic still holds what the cache copied from it (``AnchorCheck``)."""
    return AnchorCheck(settings, cache).check(timeout)
