"""Kafka clients configured for the store, and how to call and close them safely.

Every client refuses to create topics (Tansu would create four partitions), reconnects
within a second, and is bounded by the store's timeouts. A transactional call runs
under a deadline, because a fenced producer can hang instead of failing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError

from engine.stores.kafka.settings import KafkaSettings

Headers = Sequence[tuple[str, bytes]]

log = logging.getLogger("engine.stores.kafka")

T = TypeVar("T")


def new_consumer(settings: KafkaSettings, role: str, **overrides: Any) -> Any:
    """A read_committed consumer that never creates topics nor resets silently."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": f"{settings.writer_id}-{role}",
        "isolation_level": "read_committed",
        "enable_auto_commit": False,
        "auto_offset_reset": "none",
        "allow_auto_create_topics": False,
        "fetch_max_wait_ms": max(1, int(settings.fetch_max_wait * 1000)),
        "request_timeout_ms": int(settings.request_timeout * 1000) + 1000,
        "reconnect_backoff_max_ms": 1000,
        "max_poll_records": 2000,
        "bootstrap_timeout_ms": int(settings.startup_timeout * 1000),
    }
    config.update(overrides)
    return KafkaConsumer(**config)


def new_producer(settings: KafkaSettings, role: str, **overrides: Any) -> Any:
    """An idempotent ``acks=all`` producer (transactional if given a transactional id)."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": f"{settings.writer_id}-{role}",
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 0,
        "max_block_ms": int(settings.request_timeout * 1000),
        "request_timeout_ms": int(settings.request_timeout * 1000),
        "delivery_timeout_ms": int((settings.request_timeout + settings.append_timeout) * 1000),
        "allow_auto_create_topics": False,
        "reconnect_backoff_max_ms": 1000,
        # Connecting is bounded too: kafka-python's default waits 30 s for a broker.
        "bootstrap_timeout_ms": int(settings.request_timeout * 1000),
    }
    config.update(overrides)
    return KafkaProducer(**config)


def call_with_deadline(fn: Callable[[], T], timeout: float, what: str) -> T:
    """Run ``fn`` in a daemon thread; raise ``TimeoutError`` if it has not returned
    within ``timeout`` seconds (it is then abandoned)."""
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append((True, fn()))
        except BaseException as e:
            outcome.append((False, e))

    thread = threading.Thread(target=target, name=f"kafka-{what}", daemon=True)
    thread.start()
    thread.join(max(0.0, timeout))
    if not outcome:
        raise TimeoutError(f"{what} did not finish within {timeout:.1f}s")
    ok, value = outcome[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


class FetchWatch:
    """What a consumer's fetch responses say: each partition's last stable offset,
    and when the broker last answered a fetch (its health).

    A read_committed consumer reads a partition only up to its last stable offset:
    the first offset of a transaction still open. Past it, the high watermark may
    never be reached, for as long as the transaction stays open (a writer killed
    between send and commit leaves one open until the next writer fences it, or the
    broker's transaction timeout). kafka-python keeps the high watermark of a fetch
    response but drops its last stable offset, so this notes it from the consumer's
    response parser. An idle fetch is answered after ``fetch_max_wait``, so a
    consumer that has had no answer for seconds is wedged or cut off: its owner
    replaces it (``silent_for``). Both come from private hooks of kafka-python:
    where they are missing, the map stays empty (callers fall back to the high
    watermark) and the consumer never counts as silent."""

    def __init__(self, consumer: Any) -> None:
        self.stable: dict[Any, int] = {}
        self.created = time.monotonic()
        self.last_answer: float | None = None
        self._watching = False
        fetcher = getattr(consumer, "_fetcher", None)
        parse = getattr(fetcher, "_parse_fetched_data", None)
        handle = getattr(fetcher, "_handle_fetch_response", None)
        if fetcher is None or parse is None or handle is None:
            log.warning("this kafka-python does not let us watch fetch responses")
            return
        stable = self.stable

        def parse_noting_stable_offset(completed_fetch: Any) -> Any:
            offset = getattr(completed_fetch.partition_data, "last_stable_offset", None)
            if isinstance(offset, int) and offset >= 0:
                stable[completed_fetch.topic_partition] = offset
            return parse(completed_fetch)

        def handle_noting_answer(*args: Any, **kwargs: Any) -> Any:
            self.last_answer = time.monotonic()
            return handle(*args, **kwargs)

        fetcher._parse_fetched_data = parse_noting_stable_offset
        fetcher._handle_fetch_response = handle_noting_answer
        self._watching = True

    def answered_at(self) -> float | None:
        """When the broker last answered a fetch (monotonic): None before the first
        answer; now, if the responses cannot be watched."""
        return self.last_answer if self._watching else time.monotonic()

    def silent_for(self) -> float:
        """Seconds since the broker last answered a fetch of this consumer (or since
        it was created)."""
        return time.monotonic() - (self.answered_at() or self.created)


class Messenger:
    """The process's plain producer: forwarded appends, lease claims, heartbeats and
    resignations go through it.

    A kafka-python producer can wedge for good after a broker fault: once a request
    timed out while the broker was paused, later sends stayed in its queue and were
    never sent (seen after SIGSTOP/SIGCONT of the broker). So the producer is
    replaced when a send fails or times out, and when a send has gone unanswered
    for longer than the request timeout (the health of its last round trip); the
    replacement connects within the caller's deadline. The old one is closed in the
    background: what it still sends late is a forwarded append past its deadline,
    which the writer skips, or a heartbeat or claim, which is harmless."""

    def __init__(self, settings: KafkaSettings, role: str = "messenger") -> None:
        self.settings = settings
        self.role = role
        self.replacements = 0
        self._lock = threading.Lock()  # held while a producer is created
        self._health = threading.Lock()  # guards the unanswered sends
        self._unanswered: dict[int, float] = {}
        self._next_id = 0
        self._producer: Any = self._create(settings.startup_timeout)

    def send(
        self, topic: str, key: bytes, value: bytes, timeout: float, headers: Headers = ()
    ) -> int:
        """Send one record to partition 0 of ``topic`` and wait for its offset;
        ``KafkaError`` (``KafkaTimeoutError`` included) if not done in ``timeout``."""
        deadline = time.monotonic() + timeout
        producer = self._usable(deadline)
        try:
            future = producer.send(topic, key=key, value=value, headers=list(headers), partition=0)
            offset = future.get(timeout=max(0.0, deadline - time.monotonic())).offset
        except KafkaError as e:
            self._replace(producer, f"a send failed: {e}")
            raise
        return int(offset)

    def send_async(self, topic: str, key: bytes, value: bytes, headers: Headers = ()) -> None:
        """Send one record without waiting (heartbeats); a failure or a send left
        unanswered past the request timeout has the producer replaced."""
        producer = self._usable(time.monotonic() + self.settings.request_timeout)
        with self._health:
            send_id, self._next_id = self._next_id, self._next_id + 1
            self._unanswered[send_id] = time.monotonic()
        try:
            future = producer.send(topic, key=key, value=value, headers=list(headers), partition=0)
        except KafkaError as e:
            self._replace(producer, f"a send failed: {e}")
            raise

        def answered(_: Any) -> None:
            with self._health:
                self._unanswered.pop(send_id, None)

        future.add_callback(answered)
        future.add_errback(lambda e: self._replace(producer, f"a send failed: {e}"))

    def close(self) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            close_quietly(producer)  # the broker may be gone: unsent is unneeded

    def _usable(self, deadline: float) -> Any:
        with self._health:
            oldest = min(self._unanswered.values(), default=None)
        producer = self._producer
        if oldest is not None and time.monotonic() - oldest > self.settings.request_timeout:
            self._replace(producer, "a send has had no answer for longer than the request timeout")
        if not self._lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise KafkaTimeoutError("another thread is still connecting the producer")
        try:
            if self._producer is None:
                self._producer = self._create(deadline - time.monotonic())
            return self._producer
        finally:
            self._lock.release()

    def _create(self, timeout: float) -> Any:
        return new_producer(
            self.settings, self.role, bootstrap_timeout_ms=max(100, int(timeout * 1000))
        )

    def _replace(self, producer: Any, why: str) -> None:
        """Drop ``producer`` (if it is still the current one): the next send connects
        a new one."""
        with self._health:
            if producer is None or producer is not self._producer:
                return
            self._producer = None
            self._unanswered.clear()
            self.replacements += 1
        log.warning("%s producer replaced: %s", self.role, why)
        discard(producer)


def close_quietly(client: Any, timeout: float = 1.0) -> None:
    """Close a Kafka producer or consumer, dropping what it could not send within
    ``timeout`` (a consumer commits nothing: offsets go with the transactions).

    kafka-python 3.0's ``KafkaProducer.close`` raises from its flush before it
    force-closes (and ``__del__`` then tries again); finish the job in that case."""
    try:
        if isinstance(client, KafkaConsumer):
            client.close(autocommit=False, timeout_ms=int(timeout * 1000))
        else:
            client.close(timeout=timeout)
    except Exception as e:
        log.debug("Kafka client did not close cleanly: %s", e)
        sender = getattr(client, "_sender", None)
        if sender is not None:
            sender.force_close()
        if hasattr(client, "_closed"):
            client._closed = True


def discard(client: Any) -> None:
    """Close a Kafka client in the background (a fenced or wedged one may never
    finish)."""
    if client is not None:
        threading.Thread(
            target=close_quietly, args=(client,), name="kafka-discard", daemon=True
        ).start()
