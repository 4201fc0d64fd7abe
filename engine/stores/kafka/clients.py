"""Kafka clients configured for the store, and how to call and close them safely.

Every client refuses to create topics (Tansu would create four partitions), reconnects
within a second, and is bounded by the store's timeouts. A transactional call runs
under a deadline, because a fenced producer can hang instead of failing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from kafka import KafkaConsumer, KafkaProducer

from engine.stores.kafka.settings import KafkaSettings

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


def track_stable_offsets(consumer: Any) -> dict[Any, int]:
    """The last stable offset of each partition, as the consumer's latest fetch
    response reported it, kept up to date in the returned map.

    A read_committed consumer reads a partition only up to its last stable offset:
    the first offset of a transaction still open. Past it, the high watermark may
    never be reached, for as long as the transaction stays open (a writer killed
    between send and commit leaves one open until the next writer fences it, or the
    broker's transaction timeout). kafka-python keeps the high watermark of a fetch
    response but drops its last stable offset, so this notes it from the consumer's
    response parser (a private hook: where it is missing, the map stays empty and
    callers fall back to the high watermark)."""
    stable: dict[Any, int] = {}
    fetcher = getattr(consumer, "_fetcher", None)
    parse = getattr(fetcher, "_parse_fetched_data", None)
    if fetcher is None or parse is None:
        log.warning("this kafka-python does not let us read last stable offsets")
        return stable

    def parse_noting_stable_offset(completed_fetch: Any) -> Any:
        offset = getattr(completed_fetch.partition_data, "last_stable_offset", None)
        if isinstance(offset, int) and offset >= 0:
            stable[completed_fetch.topic_partition] = offset
        return parse(completed_fetch)

    fetcher._parse_fetched_data = parse_noting_stable_offset
    return stable


def close_quietly(client: Any, timeout: float = 1.0) -> None:
    """Close a Kafka client, dropping what it could not send within ``timeout``.

    kafka-python 3.0's ``KafkaProducer.close`` raises from its flush before it
    force-closes (and ``__del__`` then tries again); finish the job in that case."""
    try:
        client.close(timeout=timeout)
    except Exception as e:
        log.debug("Kafka client did not close cleanly: %s", e)
        sender = getattr(client, "_sender", None)
        if sender is not None:
            sender.force_close()
        if hasattr(client, "_closed"):
            client._closed = True


def discard(client: Any) -> None:
    """Close a Kafka client in the background (a fenced one may never finish)."""
    if client is not None:
        threading.Thread(
            target=close_quietly, args=(client,), name="kafka-discard", daemon=True
        ).start()
