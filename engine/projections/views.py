"""The read side's one entry point: keeps the views current and answers queries.

``Views(recorder, data_dir, keys=...)`` opens (or creates) the queue, audit and
reports views under ``<data_dir>/views``; ``start()`` keeps them current in a background
thread; ``rebuild()`` builds new generations from zero while the current ones keep
answering, then switches. Queries read one snapshot of one view and return pydantic
models. ``keys`` (the application's key store) unseals personal fields; without it
they read as ``[erased]``.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from eventsourcing.persistence import ApplicationRecorder

from engine.integrity.keystore import KeyStore
from engine.projections.audit.queries import AuditQueries
from engine.projections.audit.view import AuditProjection
from engine.projections.kit.catalog import Catalog
from engine.projections.kit.log_reader import LogReader
from engine.projections.kit.models import StreamEvent
from engine.projections.kit.progress import ProgressFn
from engine.projections.kit.projection import CACHE_ROWS, ViewProjection
from engine.projections.kit.queries import check_limit
from engine.projections.kit.runner import ViewRunner, build, step
from engine.projections.kit.store import UPSTREAM, StaleViewError, StoreRetiredError, ViewStore
from engine.projections.queue.queries import QueueQueries
from engine.projections.queue.view import QueueProjection
from engine.projections.reports.queries import ReportQueries
from engine.projections.reports.view import ReportProjection
from engine.stores.envelope import decode_envelope

log = logging.getLogger(__name__)
T = TypeVar("T")

VIEW_CLASSES: dict[str, type[ViewProjection]] = {
    "queue": QueueProjection,
    "audit": AuditProjection,
    "reports": ReportProjection,
}
VIEW_NAMES = tuple(VIEW_CLASSES)
MAX_EVENTS_LIMIT = 1000


class Views(QueueQueries, AuditQueries, ReportQueries):
    """The queue, audit and reports views of one notification log; the queries are
    those of each view (``queue.queries``, ``audit.queries``, ``reports.queries``)."""

    def __init__(
        self,
        recorder: ApplicationRecorder,
        data_dir: Path,
        progress: ProgressFn | None = None,
        *,
        upstream: str = UPSTREAM,
        batch_size: int = 500,
        bulk_batch_size: int = 2000,
        poll_interval: float = 0.05,
        cache_rows: int = CACHE_ROWS,
        keys: KeyStore | None = None,
    ) -> None:
        self.recorder = recorder
        self.cache_rows = cache_rows
        self.keys = keys
        self._log = LogReader(recorder, keys)
        self.catalog = Catalog(Path(data_dir) / "views")
        self.upstream = upstream
        self.batch_size = batch_size
        self.bulk_batch_size = bulk_batch_size
        self._lock = threading.RLock()
        self._live: dict[str, ViewProjection] = {}
        self._files: dict[str, str] = {}
        self._stamp: tuple[int, int] | None = None
        with self._lock:
            self._open()
        self.catalog.sweep()
        self._runner = ViewRunner(
            recorder,
            self._projections,
            self._lock,
            batch_size=batch_size,
            bulk_batch_size=bulk_batch_size,
            poll_interval=poll_interval,
            progress=progress,
        )

    # --- files and generations ----------------------------------------------------------

    def _open(self) -> None:
        """Open every view's current file; start a new one where none is usable."""
        current = self.catalog.current()
        created: dict[str, str] = {}
        for name in VIEW_NAMES:
            file = current.get(name)
            projection = self._load(name, file) if file else None
            if projection is None:
                projection, file = self._create(name)
                created[name] = file
            assert file is not None
            self._live[name], self._files[name] = projection, file
        if created:
            self.catalog.switch(created)
        self._stamp = self.catalog.stamp()

    def _load(self, name: str, file: str) -> ViewProjection | None:
        path = self.catalog.path(file)
        if not path.exists():
            return None
        try:
            cls = VIEW_CLASSES[name]
            return cls(ViewStore(path, cls.schema), self.upstream, self.cache_rows, self.keys)
        except StaleViewError as e:
            log.warning("view %s is rebuilt from the log: %s", name, e)
            return None

    def _create(self, name: str) -> tuple[ViewProjection, str]:
        cls, file = VIEW_CLASSES[name], self.catalog.new_file(name)
        store = ViewStore(self.catalog.path(file), cls.schema, create=True, bulk=True)
        return cls(store, self.upstream, self.cache_rows, self.keys), file

    def _follow(self) -> None:
        """Switch to the generations another process's rebuild pointed to."""
        if self.catalog.stamp() == self._stamp:
            return
        with self._lock:
            stamp = self.catalog.stamp()
            if stamp == self._stamp:
                return
            settled = True
            for name, file in self.catalog.current().items():
                if name not in self._live or file == self._files[name]:
                    continue
                projection = self._load(name, file)
                if projection is None:
                    settled = False  # not finished yet: look again next time
                    continue
                old, self._live[name], self._files[name] = self._live[name], projection, file
                old.view.retire(delete=False)
            if settled:
                self._stamp = stamp

    def _projections(self) -> list[ViewProjection]:
        self._follow()
        return list(self._live.values())

    def _read(self, name: str, query: Callable[[sqlite3.Connection], T]) -> T:
        for _ in range(5):
            self._follow()
            try:
                with self._live[name].view.read() as conn:
                    return query(conn)
            except StoreRetiredError:
                continue  # switched by a rebuild meanwhile: read the new generation
        raise StoreRetiredError(f"view {name} keeps being switched")

    def _names(self, view: str | None) -> list[str]:
        if view is None:
            return list(VIEW_NAMES)
        if view not in VIEW_CLASSES:
            raise ValueError(f"unknown view {view!r} (views: {', '.join(VIEW_NAMES)})")
        return [view]

    # --- running --------------------------------------------------------------------------

    def start(self) -> None:
        """Keep the views current in a background thread."""
        self._runner.start()

    def stop(self) -> None:
        self._runner.stop()

    def close(self) -> None:
        self.stop()
        with self._lock:
            for projection in self._live.values():
                projection.view.close()

    def notify(self) -> None:
        """Tell the runner new events were just recorded (it polls otherwise)."""
        self._runner.wake()

    def catch_up(self, progress: ProgressFn | None = None) -> int:
        """Apply everything recorded so far, in the calling thread (no runner needed).
        Returns the number of notifications read."""
        with self._lock:
            return build(self.recorder, self._projections(), self.bulk_batch_size, progress)

    def wait(self, position: int | None, timeout: float, views: Sequence[str] = VIEW_NAMES) -> None:
        """Return once every named view has applied ``position``; TimeoutError after
        ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        for name in views:
            while True:
                store = self._live[name].view
                try:
                    store.wait(self.upstream, position, max(0.0, deadline - time.monotonic()))
                    break
                except StoreRetiredError:
                    self._follow()

    def positions(self) -> dict[str, int]:
        return {name: self._read(name, self._tracked) for name in VIEW_NAMES}

    def health(self) -> dict[str, Any]:
        """Each view's position and lag behind the log's head (in positions)."""
        head = self.recorder.max_notification_id() or 0
        views = {}
        for name, position in self.positions().items():
            views[name] = {
                "position": position,
                "lag": max(0, head - position),
                "file": self._files[name],
                "building": self._live[name].view.bulk,
            }
        return {
            "head": head,
            "running": self._runner.running,
            "error": self._runner.error,
            "views": views,
        }

    def rebuild(self, view: str | None = None, progress: ProgressFn | None = None) -> None:
        """Build new generations of the view (all views if None) from zero while the
        current ones keep answering; switch once they have caught up with the log."""
        names = self._names(view)
        old: list[ViewProjection] = []
        with self.catalog.rebuilding():
            fresh: dict[str, tuple[ViewProjection, str]] = {}
            try:
                for name in names:
                    fresh[name] = self._create(name)
                    # Nobody reads a new generation before the switch: it writes rows
                    # once, not at every batch (the file is untrusted until finished).
                    fresh[name][0].hold_rows()
                projections = [p for p, _ in fresh.values()]
                build(self.recorder, projections, self.bulk_batch_size, progress)
                while step(self.recorder, projections, self.batch_size) == self.batch_size:
                    pass  # the tail recorded meanwhile, the current views still answering
                with self._lock:  # no batch of the live views is half way now
                    while step(self.recorder, projections, self.batch_size):
                        pass
                    self.catalog.switch({name: file for name, (_, file) in fresh.items()})
                    self._stamp = self.catalog.stamp()
                    for name, (projection, file) in fresh.items():
                        old.append(self._live[name])
                        self._live[name], self._files[name] = projection, file
            except BaseException:
                for projection, _ in fresh.values():
                    if not any(projection is p for p in self._live.values()):
                        projection.view.retire(delete=True)
                raise
        for projection in old:
            projection.view.retire(delete=True)

    # --- event stream ---------------------------------------------------------------------

    def events(self, after: int = 0, limit: int = 100) -> list[StreamEvent]:
        """Notifications after position ``after``, in order, with their envelopes as
        stored (read from the log itself, not from a view)."""
        check_limit(limit, MAX_EVENTS_LIMIT)
        notifications = self.recorder.select_notifications(
            start=max(0, after), limit=limit, inclusive_of_start=False
        )
        return [
            StreamEvent(position=n.id, envelope=decode_envelope(n.state)) for n in notifications
        ]
