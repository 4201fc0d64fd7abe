"""One event topic as this process sees it: the topics checked, the cache kept
current by the tailer, the writer role contended for, and appends routed to
whichever instance holds that role.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout

from eventsourcing.persistence import DataError, IntegrityError
from kafka.errors import KafkaError

from engine.stores.kafka.cache import EventCache, Key
from engine.stores.kafka.clients import Messenger
from engine.stores.kafka.codec import REQUEST_HEADERS, AppendRequest, EventRow, Reply, record_size
from engine.stores.kafka.errors import CacheDivergedError, StoreUnavailableError
from engine.stores.kafka.lease import LeaseView
from engine.stores.kafka.settings import KafkaSettings
from engine.stores.kafka.tailer import Progress, Tailer, probe_log_end
from engine.stores.kafka.topic import ensure_topics
from engine.stores.kafka.writer import NotWriterError, Writer

log = logging.getLogger("engine.stores.kafka")

# Kafka's default limit on a record (batch) is 1 MiB; a forwarded append is sent as
# one base64-encoded record, hence the lower limit on an append's total size.
MAX_RECORD_BYTES = 1_000_000
MAX_APPEND_BYTES = 700_000
GRACE = 1.0  # how long past its deadline a caller waits for the writer's verdict


class KafkaEventLog:
    """Appends to and reads from one event topic.

    ``append`` returns the Kafka offsets of the events once their transaction is
    committed and the cache holds them; it raises ``IntegrityError`` when a version
    is taken (or one of the keys ``free`` is: the append's conditions),
    ``StoreUnavailableError`` when the append could not be confirmed before its deadline,
    ``DataError`` for an append too large for a Kafka record.
    Construction raises ``StoreUnavailableError`` if the cache cannot catch up with
    the topic within the start-up timeout.
    """

    def __init__(self, settings: KafkaSettings, progress: Progress | None = None) -> None:
        self.settings = settings
        self._closed = False
        self._pending: dict[str, Future[Reply]] = {}
        self._pending_lock = threading.Lock()
        ensure_topics(settings)
        self.cache = EventCache(settings.cache_path, settings.topic)
        self.lease = LeaseView()
        try:
            self.messenger = Messenger(settings)
        except KafkaError as e:
            self.cache.close()
            raise StoreUnavailableError(f"Kafka at {settings.bootstrap_servers}: {e}") from e
        self.tailer = Tailer(settings, self.cache, self.lease, self._on_reply, progress)
        self.writer = Writer(settings, self.cache, self.lease, self.tailer, self.messenger)
        self.tailer.start()
        try:
            self._wait_started()
        except BaseException:
            self.close()
            raise
        self.writer.start()
        self._wait_for_writer()

    def stats(self) -> dict[str, float]:
        """Figures for /metrics: whether this process holds the writer role, the lease's
        epoch, the events in the cache, how many records of the topic the cache has
        not yet read (NaN until the tailer has seen the topic's end), and whether the
        cache diverged from the topic (then it serves nothing)."""
        end = self.tailer.readable_end
        behind = float("nan") if end is None else float(max(0, end - self.cache.next_offset))
        return {
            "writer": float(self.writer.is_holder),
            "lease_epoch": float(self.lease.epoch),
            "cache_events": float(self.cache.head),
            "tailer_lag_records": behind,
            "diverged": float(self.cache.diverged is not None),
        }

    # -- appending -----------------------------------------------------------------

    def append(self, rows: list[EventRow], free: Sequence[Key] = ()) -> list[int]:
        self._check_usable()
        sizes = [record_size(r) for r in rows]
        if max(sizes) > MAX_RECORD_BYTES or sum(sizes) > MAX_APPEND_BYTES:
            raise DataError(
                f"append of {sum(sizes)} bytes is too large for a Kafka record "
                f"(at most {MAX_RECORD_BYTES} per event, {MAX_APPEND_BYTES} in all)"
            )
        deadline = time.monotonic() + self.settings.append_timeout
        while time.monotonic() < deadline:
            if not self.writer.is_holder:
                offsets = self._forward(rows, free, deadline)
                break
            try:
                future = self.writer.submit(rows, deadline, free)
                offsets = future.result(timeout=deadline - time.monotonic() + GRACE)
                break
            except NotWriterError:
                continue  # the role moved while we asked: forward instead
            except FutureTimeout:
                raise self._unavailable("the writer did not confirm the append") from None
        else:
            raise self._unavailable("the append could not be routed to a writer")
        if not self.cache.wait_for_offset(max(offsets) + 1, self.settings.append_timeout):
            raise StoreUnavailableError(
                f"the append was committed at offsets {offsets[0]}..{offsets[-1]} but the "
                "local cache has not read them back yet"
            )
        return offsets

    def _forward(self, rows: list[EventRow], free: Sequence[Key], deadline: float) -> list[int]:
        remaining = deadline - time.monotonic()
        request = AppendRequest(
            uuid.uuid4().hex, self.settings.writer_id, time.time() + remaining, rows, list(free)
        )
        future: Future[Reply] = Future()
        with self._pending_lock:
            self._pending[request.request_id] = future
        try:
            self.messenger.send(
                self.settings.requests_topic,
                key=request.request_id.encode(),
                value=request.encode(),
                timeout=max(0.0, remaining),
                headers=REQUEST_HEADERS,
            )
            reply = future.result(timeout=max(0.0, deadline - time.monotonic()) + GRACE)
        except KafkaError as e:
            raise self._unavailable(f"could not forward the append: {e}") from e
        except FutureTimeout:
            raise self._unavailable("no writer confirmed the append") from None
        finally:
            with self._pending_lock:
                self._pending.pop(request.request_id, None)
        if reply.kind == "conflict":
            raise IntegrityError(reply.message)
        return reply.offsets

    def _on_reply(self, reply: Reply) -> None:
        with self._pending_lock:
            future = self._pending.get(reply.request_id)
        if future is not None:
            try:
                future.set_result(reply)
            except InvalidStateError:
                pass  # a repeated answer (the request was processed twice)

    # -- state -----------------------------------------------------------------------

    def catch_up(self, timeout: float) -> bool:
        """Wait until the cache holds every record the topic held when called (its end
        read by a fetch made now); False if that took longer than ``timeout``."""
        deadline = time.monotonic() + timeout
        try:
            end = probe_log_end(self.settings, self.cache, timeout)
        except CacheDivergedError:
            raise  # not a slow broker: this history is not served any more
        except StoreUnavailableError:
            return False
        return self.cache.wait_for_offset(end, max(0.0, deadline - time.monotonic()))

    def notification_ids(self, offsets: list[int]) -> list[int]:
        return self.cache.notification_ids(offsets)

    def _check_usable(self) -> None:
        if self._closed:
            raise StoreUnavailableError("the Kafka recorder is closed")
        diverged = self.cache.diverged or self.writer.diverged
        if diverged is not None:
            raise CacheDivergedError(diverged.divergence)
        if self.tailer.failure is not None:
            raise StoreUnavailableError(
                f"the cache stopped reading the topic: {self.tailer.failure}"
            )

    def _unavailable(self, what: str) -> StoreUnavailableError:
        detail = self.writer.last_error
        return StoreUnavailableError(
            f"{what} within {self.settings.append_timeout:.1f}s"
            + (f" ({detail})" if detail else "")
            + "; if it was recorded after all, a retry meets a version conflict"
        )

    def _wait_started(self) -> None:
        """Wait until the cache and the lease view have caught up with the topic."""
        deadline = time.monotonic() + self.settings.startup_timeout
        while not self.tailer.caught_up.wait(0.05):
            if self.tailer.failure is not None or self.tailer.diverged is not None:
                break
            if time.monotonic() > deadline:
                raise StoreUnavailableError(
                    f"the cache of topic {self.settings.topic!r} did not catch up within "
                    f"{self.settings.startup_timeout:.0f}s"
                )

    def _wait_for_writer(self) -> None:
        """If the writer role is free, give this instance the time to take it, so
        that the first append does not wait for an election."""
        if not self.lease.claimable(self.settings.lease_timeout):
            return
        me, deadline = self.settings.writer_id, time.monotonic() + self.settings.append_timeout
        while time.monotonic() < deadline and self.tailer.diverged is None:
            held = not self.lease.claimable(self.settings.lease_timeout)
            if held and (self.lease.holder != me or self.writer.state == "active"):
                return
            time.sleep(0.005)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.writer.stop()
        if self.writer.is_alive():
            self.writer.join(self.settings.request_timeout + 2)
        self.tailer.stop()
        if self.tailer.is_alive():
            self.tailer.join(5)
        self.messenger.close()
        self.cache.close()
