"""What the application remembers about streams it used: folded states and chain heads.

Both are only ever shortcuts for reading a prefix of a stream again, and a stream's
prefix never changes (events are immutable and versions contiguous), so neither can be
stale in a way that matters:

- a cached state is the fold of versions ``1..v``; every use reads the events after
  ``v`` from the store first (``TicketingApp._current``), so it is as current as a full
  load, with any number of processes writing the same store;
- a cached head is the hash of one event ``(aggregate, v)``, which is what the next
  event at ``v + 1`` chains to; if someone else took ``v + 1`` meanwhile, the store's
  own version check refuses our append, as it would without the cache.

Entries come only from events read from the store or appended by us successfully.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Any
from uuid import UUID

MAX_STREAMS = 20_000


class StreamCache:
    """Thread-safe and bounded: past ``max_streams`` entries the oldest tenth goes."""

    def __init__(self, max_streams: int = MAX_STREAMS) -> None:
        self.max_streams = max_streams
        self._states: dict[tuple[UUID, Hashable], tuple[int, Any]] = {}
        self._heads: dict[UUID, tuple[int, str]] = {}
        self._lock = threading.Lock()

    def state(self, aggregate_id: UUID, kind: Hashable) -> tuple[int, Any] | None:
        """The last remembered ``(version, state)`` of the stream folded by ``kind``."""
        return self._states.get((aggregate_id, kind))

    def remember_state(self, aggregate_id: UUID, kind: Hashable, version: int, state: Any) -> None:
        """Keep the fold of versions ``1..version``; an older one never replaces a newer."""
        key = (aggregate_id, kind)
        with self._lock:
            known = self._states.pop(key, None)
            if known is not None and known[0] > version:
                version, state = known
            self._states[key] = (version, state)
            _trim(self._states, self.max_streams)

    def head(self, aggregate_id: UUID, version: int) -> str | None:
        """The hash of the stream's event at ``version``, if that is the one remembered."""
        known = self._heads.get(aggregate_id)
        return known[1] if known is not None and known[0] == version else None

    def remember_head(self, aggregate_id: UUID, version: int, hash_: str) -> None:
        with self._lock:
            known = self._heads.pop(aggregate_id, None)
            if known is not None and known[0] > version:
                version, hash_ = known
            self._heads[aggregate_id] = (version, hash_)
            _trim(self._heads, self.max_streams)

    def forget_states(self) -> None:
        """Drop every folded state (they may hold decrypted personal data)."""
        with self._lock:
            self._states.clear()


def _trim(entries: dict[Any, Any], limit: int) -> None:
    """Drop the oldest tenth once ``limit`` is passed (dicts keep insertion order, and
    every remember re-inserts its entry last)."""
    if len(entries) <= limit:
        return
    for key in list(entries)[: max(1, limit // 10)]:
        del entries[key]
