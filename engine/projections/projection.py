"""The base of every view: an eventsourcing ``Projection`` whose view is a ``ViewStore``.

A batch of events is applied in one transaction of the view's store together with
the tracking position of the batch's last event (``ViewStore.write``). Rows are folded
in write-behind caches and written once at the end of the batch. When anything fails
the transaction rolls back and the caches are dropped, so the view stays exactly at
its last committed position and the batch can be applied again.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from engine.integrity.keystore import KeyStore
from engine.projections.cache import RowCache
from engine.projections.records import EventRecord, from_domain_event
from engine.projections.store import UPSTREAM, ViewSchema, ViewStore

Handler = Callable[[EventRecord], None]
CACHE_ROWS = 20_000
"""Rows a view keeps in memory per table between batches (more: faster rebuilds)."""


class ViewProjection(Projection[ViewStore], ABC):
    """Folds events into one view's tables."""

    schema: ClassVar[ViewSchema]

    def __init__(
        self,
        view: ViewStore,
        upstream: str = UPSTREAM,
        cache_rows: int = CACHE_ROWS,
        keys: KeyStore | None = None,
    ) -> None:
        super().__init__(view)
        self.upstream = upstream
        self.cache_rows = cache_rows
        self.keys = keys
        """Unseals personal fields a view keeps (None: they read as erased)."""
        self.caches: tuple[RowCache, ...] = ()
        """The view's write-behind caches (see ``cache``)."""
        self._cur: sqlite3.Cursor | None = None

    @property
    @abstractmethod
    def handlers(self) -> Mapping[str, Handler]:
        """The view's handler for each event type it reads; other types only advance
        the position."""

    @abstractmethod
    def flush(self, cur: sqlite3.Cursor) -> None:
        """Write the batch's folded rows (inside the batch's transaction)."""

    @abstractmethod
    def reset(self) -> None:
        """Drop every cached row (the batch's transaction was rolled back)."""

    def finish_bulk(self) -> None:
        """End the store's bulk build; from now on the indexes find rows."""
        self.view.finish_bulk()
        for cache in self.caches:
            cache.forget_keys()

    def committed(self) -> None:
        """Called after each committed batch (outside its transaction)."""

    @property
    def position(self) -> int:
        """The view's committed position (0 before the first event)."""
        return self.view.position(self.upstream) or 0

    @property
    def cur(self) -> sqlite3.Cursor:
        assert self._cur is not None, "only inside process_batch"
        return self._cur

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        """The library's entry point: one domain event, one transaction."""
        self.process_batch([from_domain_event(domain_event, tracking.notification_id)], tracking)

    def process_batch(self, records: Sequence[EventRecord], tracking: Tracking) -> None:
        """Apply ``records`` and move the position to ``tracking``, atomically."""
        handlers = self.handlers
        try:
            with self.view.write(tracking) as cur:
                self._cur = cur
                for record in records:
                    handler = handlers.get(record["type"])
                    if handler is not None:
                        handler(record)
                self.flush(cur)
        except BaseException:
            self.reset()
            raise
        finally:
            self._cur = None
        self.committed()
