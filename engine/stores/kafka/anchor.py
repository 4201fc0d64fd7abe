"""The anchor check: does the topic still hold the history the cache copied?

The cache's anchor is its last cached event record. The topic still holds the cached
history if it holds that very record at that offset (same key, headers and value: same
event id and chain hash) and reaches at least as far as the cache has read. Every
process checks it when its tailer (re)connects, at a regular interval
(``KAFKA_VERIFY_INTERVAL_MS``), before taking in new records after a pause longer than
that, and its writer before it takes the role; new records are checked one by one
against the chain as the cache takes them in (``lineage.py``). A mismatch diverges
the cache (``CacheDivergedError``), and the process stops serving that history.
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


class AnchorCheck:
    """Checks the cache's anchor against the topic with a consumer of its own (kept
    between checks, replaced after an error). ``check`` returns the topic's end (high
    watermark) as a fetch made now reports it; it raises ``CacheDivergedError`` (and
    diverges the cache) on a mismatch, ``StoreUnavailableError`` without an answer."""

    def __init__(self, settings: KafkaSettings, cache: EventCache) -> None:
        self.settings = settings
        self.cache = cache
        self._tp = TopicPartition(settings.topic, 0)
        self._consumer: Any = None

    def check(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        cache = self.cache
        if cache.diverged is not None:
            raise CacheDivergedError(cache.diverged.divergence)
        last, read_up_to = cache.last_record(), cache.next_offset
        try:
            consumer = self._client(timeout)
            consumer.seek(self._tp, last[0] if last else read_up_to)
            while time.monotonic() < deadline:
                try:
                    batches = consumer.poll(timeout_ms=50)
                except OffsetOutOfRangeError:
                    raise self._diverge(
                        f"the topic no longer has offset {last[0] if last else read_up_to}: {LOST}",
                        last,
                    ) from None
                end = consumer.highwater(self._tp)
                if last is not None:
                    first = next(iter(batches.get(self._tp, ())), None)
                    if first is not None:
                        self._compare(last, first, end)
                        last = None
                    elif end is not None and end <= last[0]:
                        raise self._diverge(
                            f"the topic ends at offset {end}, before the cached record: {LOST}",
                            last,
                            end,
                        )
                if last is None and end is not None:
                    if end < read_up_to:
                        raise self._diverge(
                            f"the topic ends at offset {end}, before offset {read_up_to}, "
                            f"which the cache has read up to: {LOST}",
                            cache.last_record(),
                            int(end),
                        )
                    return int(end)
            if read_up_to > 0 and self.settings.topic not in consumer.topics():
                raise self._diverge(f"the topic is gone: {LOST}", cache.last_record())
        except KafkaError as e:
            self.close()
            raise StoreUnavailableError(f"Kafka at {self.settings.bootstrap_servers}: {e}") from e
        raise StoreUnavailableError(f"no fetch from topic {self.settings.topic!r} answered in time")

    def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            close_quietly(consumer)

    def _client(self, timeout: float) -> Any:
        if self._consumer is None:
            consumer = new_consumer(
                self.settings,
                "anchor",
                bootstrap_timeout_ms=max(1, int(timeout * 1000)),
                max_poll_records=1,
                max_partition_fetch_bytes=64 * 1024,
            )
            consumer.assign([self._tp])
            self._consumer = consumer
        return self._consumer

    def _compare(self, last: tuple[int, EventRow], record: Any, end: int | None) -> None:
        offset, cached = last
        try:
            found: EventRow | None = row_from_record(
                record.key, record.value, record.headers, self.settings.originator_id_type
            )
        except RecordFormatError:
            found = None
        if record.offset == offset and found == cached:
            return
        found_id = mark_of(found).event_id if found is not None else None
        what = (f"event {found_id}" if found_id else "a record the cache cannot read") + (
            "" if record.offset == offset else f" (at offset {record.offset})"
        )
        raise self._diverge(
            f"the topic holds {what} where the cache holds event "
            f"{mark_of(cached).event_id or '(no event id)'}: {LOST}",
            last,
            end,
            found=found_id or what,
        )

    def _diverge(
        self,
        cause: str,
        last: tuple[int, EventRow] | None,
        end: int | None = None,
        found: str | None = None,
    ) -> CacheDivergedError:
        cache = self.cache
        error = CacheDivergedError(
            Divergence(
                self.settings.topic,
                str(cache.path),
                cause,
                offset=last[0] if last else cache.next_offset,
                cached=mark_of(last[1]).event_id if last else None,
                found=found,
                cached_up_to=cache.next_offset,
                topic_end=end,
            )
        )
        return cache.diverge(error)


def probe_log_end(settings: KafkaSettings, cache: EventCache, timeout: float) -> int:
    """The event partition's end, from a fetch made now by a new consumer, after
    checking the topic still holds what the cache copied from it (``AnchorCheck``)."""
    anchor = AnchorCheck(settings, cache)
    try:
        return anchor.check(timeout)
    finally:
        anchor.close()
