"""The base of every view: an eventsourcing ``Projection`` whose view is a ``ViewStore``.

A batch of events is applied in one transaction of the view's store together with
the tracking position of the batch's last event (``ViewStore.write``). Rows are folded
in write-behind caches and written once at the end of the batch. When anything fails
the transaction rolls back and the caches are dropped, so the view stays exactly at
its last committed position and the batch can be applied again.

A rebuild's new generation, which nobody reads before it is switched in, may *hold*
its rows (``hold_rows``): rows are written when the caches let go of them and at the
end of the bulk build, in the transaction that marks the file finished. Until then the
file is untrusted (``ViewStore`` refuses an unfinished bulk file), and a failed batch
cannot be applied again: the rows held since the last write are gone with the caches.
"""

from __future__ import annotations

import json
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from engine.domain.directory import agent_of
from engine.integrity.jsonbytes import compact_json
from engine.integrity.keystore import KeyStore
from engine.integrity.personal import decrypt_value, is_encrypted
from engine.projections.kit.cache import RowCache
from engine.projections.kit.records import EventRecord, from_domain_event
from engine.projections.kit.store import UPSTREAM, ViewSchema, ViewStore, ViewStoreError

Handler = Callable[[EventRecord], None]


class RecordNotAppliedError(ViewStoreError):
    """A view's handler failed on the record at ``position`` (names the view, the record
    and why): the batch is rolled back, and the runner applies the records before it."""

    def __init__(self, view: object, record: EventRecord, problem: BaseException) -> None:
        super().__init__(
            f"{view}: notification {record['position']} ({record['type']}) cannot be "
            f"applied: {type(problem).__name__}: {problem}"
        )
        self.position = record["position"]


CACHE_ROWS = 20_000
"""Rows a view keeps in memory per table between batches (more: faster rebuilds)."""


class ViewProjection(Projection[ViewStore], ABC):
    """Folds events into one view's tables. A view names its schema, makes its caches
    and handlers in ``setup``, and may change how a batch's rows are written
    (``flush``) and forgotten (``reset``)."""

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
        self._lost = False
        self._handlers = dict(self.setup())

    @abstractmethod
    def setup(self) -> Mapping[str, Handler]:
        """Make the view's caches (``caches``) and state, and return its handler for
        each event type it reads (called once, by ``__init__``)."""

    @property
    def handlers(self) -> Mapping[str, Handler]:
        """The view's handler for each event type it reads; other types only advance
        the position."""
        return self._handlers

    def flush(self, cur: sqlite3.Cursor) -> None:
        """Write the batch's folded rows (inside the batch's transaction)."""
        for cache in self.caches:
            cache.flush(cur)

    def reset(self) -> None:
        """Drop every cached row (the batch's transaction was rolled back)."""
        for cache in self.caches:
            cache.reset()

    def hold_rows(self) -> None:
        """Write rows only when the caches let go of them and when the bulk build ends
        (only for a bulk build nobody reads: the position runs ahead of the rows)."""
        if not self.view.bulk:
            raise ViewStoreError(f"{self.view.path}: only a bulk build may hold its rows")
        for cache in self.caches:
            cache.hold()

    @property
    def holding(self) -> bool:
        return any(cache.held for cache in self.caches)

    def finish_bulk(self) -> None:
        """End the store's bulk build, writing any held rows first (in the same
        transaction); from now on the indexes find rows."""
        if self._lost:
            raise ViewStoreError(f"{self.view.path}: a batch failed while rows were held")
        if self.holding:
            for cache in self.caches:
                cache.release()
            self.view.finish_bulk(before=self._flush_held)
        else:
            self.view.finish_bulk()
        for cache in self.caches:
            cache.forget_keys()

    def _flush_held(self, cur: sqlite3.Cursor) -> None:
        try:
            self.flush(cur)
        except BaseException:
            self._lost = True
            self.reset()
            raise

    @property
    def lost(self) -> bool:
        """A batch failed while rows were held: this view cannot go on (rebuild it)."""
        return self._lost

    def committed(self) -> None:
        """Called after each committed batch (outside its transaction)."""

    @staticmethod
    def kept(value: Any) -> Any:
        """A personal field as a view keeps it on disk: sealed, as the log holds it (its
        JSON text; ``opened`` reads it), so no view file holds personal data in clear. A
        view that keeps one also blanks it on ``SubjectErased``."""
        return compact_json(value).decode() if is_encrypted(value) else value

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
        if self._lost:
            raise ViewStoreError(f"{self.view.path}: a batch failed while rows were held")
        handlers = self.handlers
        try:
            with self.view.write(tracking) as cur:
                self._cur = cur
                for record in records:
                    handler = handlers.get(record["type"])
                    if handler is not None:
                        try:
                            handler(record)
                        except (KeyError, TypeError, ValueError, AttributeError) as e:
                            raise RecordNotAppliedError(self.view.path, record, e) from e
                self.flush(cur)
        except BaseException:
            self._lost = self.holding  # held rows were dropped with the caches
            self.reset()
            raise
        finally:
            self._cur = None
        self.committed()


def agent_key(subject_id: str) -> str | None:
    """The view key (agent id text) of the agent whose data subject ``subject_id`` is."""
    agent = agent_of(subject_id)
    return None if agent is None else str(agent)


def opened(keys: KeyStore | None, field: str, value: Any) -> Any:
    """A personal field a view kept (``ViewProjection.kept``), in clear for a reader:
    ``[erased]`` once its subject's key is gone; other values as they are."""
    if isinstance(value, str) and value.startswith(_SEALED_TEXT):
        sealed = json.loads(value)
        if is_encrypted(sealed):
            return decrypt_value(keys, field, sealed)
    return value


_SEALED_TEXT = '{"$enc":'


class QueryKeys(KeyStore):
    """The key store as one query reads it: each subject's key looked up once (a page
    or a search opens many fields of the same few subjects). Read only."""

    def __init__(self, keys: KeyStore) -> None:
        self._keys = keys
        self._found: dict[str, bytes | None] = {}

    def key_for(self, subject_id: str) -> bytes | None:
        if subject_id not in self._found:
            self._found[subject_id] = self._keys.key_for(subject_id)
        return self._found[subject_id]

    def get_or_create(self, subject_id: str) -> bytes:
        raise TypeError("a query does not create keys")

    def destroy(self, subject_id: str) -> bool:
        raise TypeError("a query does not destroy keys")

    def is_erased(self, subject_id: str) -> bool:
        return self._keys.is_erased(subject_id)


def query_keys(keys: KeyStore | None) -> KeyStore | None:
    return None if keys is None else QueryKeys(keys)
