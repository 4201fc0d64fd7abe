"""Rebuilding the cache from the topic as it is now: the fix for a diverged cache.

``rebuild_cache`` copies the whole event topic into a new cache file beside the current
one, with the same checks as any catch-up (whole transactions only, every record
continuing its chain), and replaces the current file only once the copy has caught up:
a rebuild that fails leaves the current cache as it was. The cache's lock is held
throughout, so it refuses to run beside a process that uses the cache.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

from engine.stores.kafka.cache import EventCache, lock_exclusively
from engine.stores.kafka.errors import StoreUnavailableError
from engine.stores.kafka.lease import LeaseView
from engine.stores.kafka.settings import KafkaSettings
from engine.stores.kafka.tailer import CatchUpProgress, Tailer
from engine.stores.kafka.topic import ensure_topics

SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def rebuild_cache(
    settings: KafkaSettings, progress: Callable[[CatchUpProgress], None] | None = None
) -> int:
    """Replace the cache at ``settings.cache_path`` with a fresh copy of the topic;
    returns the number of events copied. Raises ``OperationalError`` if a process
    uses the cache, ``CacheDivergedError`` if the topic's own records do not chain,
    ``StoreUnavailableError`` if the copy does not catch up within the start-up
    timeout."""
    path = settings.cache_path
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = lock_exclusively(Path(f"{path}.lock"))  # no process may use the cache meanwhile
    try:
        ensure_topics(settings)
        fresh_path = path.with_name(f"{path.name}.rebuilding")
        _remove(fresh_path)
        fresh = EventCache(fresh_path, settings.topic)
        tailer = Tailer(settings, fresh, LeaseView(), lambda reply: None, progress)
        try:
            tailer.start()
            deadline = time.monotonic() + settings.startup_timeout
            while not tailer.caught_up.wait(0.05):
                if fresh.diverged is not None:
                    raise fresh.diverged
                if tailer.failure is not None:
                    raise StoreUnavailableError(f"reading the topic: {tailer.failure}")
                if time.monotonic() > deadline:
                    raise StoreUnavailableError(
                        f"the copy of topic {settings.topic!r} did not catch up within "
                        f"{settings.startup_timeout:.0f}s (KAFKA_STARTUP_TIMEOUT_MS)"
                    )
        except BaseException:
            tailer.stop()
            tailer.join(5)
            fresh.close()
            _remove(fresh_path)  # the current cache stays as it was
            raise
        tailer.stop()
        tailer.join(5)
        events = fresh.head
        fresh.close()
        for suffix in SQLITE_SIDE_FILES:
            _remove(Path(f"{path}{suffix}"))
        os.replace(fresh_path, path)
        _remove(fresh_path)  # its lock file
        return events
    finally:
        if lock is not None:
            os.close(lock)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    for suffix in (*SQLITE_SIDE_FILES, ".lock"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()
