"""A view's SQLite file: its tables and its tracking position, committed together.

Each view lives in its own file, so a rebuild can fill a new file while the old one
keeps answering, and views never queue behind each other's write lock.

Guarantees:

- ``write(tracking)`` opens one transaction that first moves the tracking position
  from the one this store last committed to ``tracking.notification_id`` (a
  compare-and-set), then lets the caller change rows, then commits. Rows and position
  commit together or not at all, so an event is never applied twice or skipped.
- A position that is not after the current one, or a position moved meanwhile by
  another writer, raises ``TrackingConflictError`` (an ``IntegrityError``) and changes
  nothing.
- ``read()`` gives a connection inside a read transaction: one consistent snapshot.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from threading import Event
from typing import Any

from eventsourcing.persistence import (
    IntegrityError,
    Tracking,
    TrackingRecorder,
    WaitInterruptedError,
)

UPSTREAM = "ticketing"
"""Application name under which views track positions in the engine's notification log."""


@dataclass(frozen=True)
class ViewSchema:
    """A view's tables. Bump ``version`` whenever the tables or their meaning change:
    a file with another version is rebuilt from the log at start."""

    name: str
    version: int
    tables: tuple[str, ...]
    indexes: tuple[str, ...] = ()


class ViewStoreError(Exception):
    """Base of the view store's errors."""


class StaleViewError(ViewStoreError):
    """The file was written by another schema version, or its first build never ended."""


class StoreRetiredError(ViewStoreError):
    """The store was switched out by a rebuild: ask the facade for the current one."""


class TrackingConflictError(IntegrityError):
    """The tracking position is not the one this write expected to move on from."""


_TRACKING = (
    "CREATE TABLE IF NOT EXISTS tracking (application_name TEXT PRIMARY KEY, "
    "notification_id INTEGER NOT NULL) WITHOUT ROWID"
)
_META = "CREATE TABLE IF NOT EXISTS view_meta (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID"


def tracked_position(conn: sqlite3.Connection, application_name: str) -> int | None:
    """The position ``conn`` sees committed for ``application_name`` (None: not yet)."""
    row = conn.execute(
        "SELECT notification_id FROM tracking WHERE application_name = ?", (application_name,)
    ).fetchone()
    return None if row is None else int(row[0])


class ViewStore(TrackingRecorder):
    """One view's SQLite file, a ``TrackingRecorder`` whose tracking shares the rows'
    transactions.

    ``create=True`` makes the tables in a new file; ``bulk=True`` (with ``create``)
    defers the indexes and relaxes fsync until ``finish_bulk()``: a file whose bulk
    build did not finish is refused on open (``StaleViewError``) and built again.
    """

    poll_interval = 0.05

    def __init__(
        self,
        path: Path,
        schema: ViewSchema,
        *,
        create: bool = False,
        bulk: bool = False,
        lock_timeout: float = 30.0,
        max_idle_readers: int = 8,
    ) -> None:
        self.path = path
        self.schema = schema
        self.lock_timeout = lock_timeout
        self.created = create
        self.bulk = bulk and create
        self._write_lock = threading.Lock()
        self._advanced = threading.Condition()
        self._lease_lock = threading.Condition()
        self._leases = 0
        self._idle: list[sqlite3.Connection] = []
        self._max_idle = max_idle_readers
        self._retired = False
        self._writer = self._connect()
        if self.bulk:
            # No write-ahead log while bulk loading: pages are written once, not twice.
            self._writer.execute("PRAGMA page_size=8192")
            self._writer.execute("PRAGMA journal_mode=MEMORY")
        else:
            self._writer.execute("PRAGMA journal_mode=WAL")
        self._writer.execute("PRAGMA temp_store=MEMORY")
        if create:
            self._create()
        else:
            self._check()
        self._tune_writer()
        self._positions = self._load_positions()

    # --- opening ------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(
            str(self.path),
            timeout=self.lock_timeout,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=256,
        )

    def _tune_writer(self) -> None:
        # Bulk builds skip fsync: an unfinished bulk file is discarded, never trusted.
        self._writer.execute(f"PRAGMA synchronous={'OFF' if self.bulk else 'NORMAL'}")
        self._writer.execute("PRAGMA secure_delete=ON")  # erased data leaves no trace
        self._writer.execute(f"PRAGMA cache_size={-65536 if self.bulk else -16384}")  # KiB

    def _create(self) -> None:
        with self._transaction() as w:
            for statement in (*self.schema.tables, _TRACKING, _META):
                w.execute(statement)
            if not self.bulk:
                for statement in self.schema.indexes:
                    w.execute(statement)
            w.executemany(
                "INSERT INTO view_meta VALUES (?, ?)",
                [
                    ("schema", self.schema.name),
                    ("version", str(self.schema.version)),
                    ("bulk", "1" if self.bulk else "0"),
                ],
            )

    def _check(self) -> None:
        try:
            meta = dict(self._writer.execute("SELECT key, value FROM view_meta").fetchall())
        except sqlite3.DatabaseError:
            raise StaleViewError(f"{self.path} is not a readable view file") from None
        expected = {"schema": self.schema.name, "version": str(self.schema.version)}
        if {k: meta.get(k) for k in expected} != expected:
            raise StaleViewError(
                f"{self.path} holds {meta.get('schema')} v{meta.get('version')}, "
                f"this engine reads {self.schema.name} v{self.schema.version}"
            )
        if meta.get("bulk") != "0":
            raise StaleViewError(f"{self.path}: its first build did not finish")

    def scrub(self) -> None:
        """Empty the write-ahead log into the file and truncate it, so that rows just
        overwritten (erased personal data) leave no copy behind. With
        ``secure_delete`` on, freed pages are zeroed too."""
        with self._write_lock:
            if not self._retired and not self.bulk:
                self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def finish_bulk(self, before: Callable[[sqlite3.Cursor], None] | None = None) -> None:
        """End a bulk build: add the indexes, gather planner statistics, fsync again.
        ``before`` writes the rows a build held back, in the same transaction."""
        if not self.bulk:
            return
        with self._write_lock:
            self._refuse_if_retired()
            with self._transaction() as w:
                if before is not None:
                    before(w.cursor())
                for statement in self.schema.indexes:
                    w.execute(statement)
                w.execute("PRAGMA analysis_limit=1000")  # sampled statistics: fast
                w.execute("ANALYZE")
                w.execute("UPDATE view_meta SET value = '0' WHERE key = 'bulk'")
            w.execute("PRAGMA journal_mode=WAL")
            self.bulk = False
            self._tune_writer()

    # --- writing ------------------------------------------------------------------

    def _refuse_if_retired(self) -> None:
        if self._retired:
            raise StoreRetiredError(f"{self.path} was switched out")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """The writer inside one immediate transaction, committed when the block ends
        and rolled back when it raises (the caller holds the write lock, or is
        creating the file)."""
        w = self._writer
        w.execute("BEGIN IMMEDIATE")
        try:
            yield w
            w.execute("COMMIT")
        except BaseException:
            if w.in_transaction:
                w.execute("ROLLBACK")
            raise

    # --- tracking -----------------------------------------------------------------

    def _load_positions(self) -> dict[str, int]:
        rows = self._writer.execute("SELECT application_name, notification_id FROM tracking")
        return dict(rows.fetchall())

    def position(self, application_name: str = UPSTREAM) -> int | None:
        """The position this store last committed (no database round trip)."""
        return self._positions.get(application_name)

    @contextlib.contextmanager
    def write(self, tracking: Tracking) -> Iterator[sqlite3.Cursor]:
        """One transaction that moves the position to ``tracking`` and commits the
        caller's row changes with it. Raises ``TrackingConflictError`` (changing
        nothing) when the position is not after the one last committed here."""
        with self._write_lock:
            self._refuse_if_retired()
            try:
                with self._transaction() as w:
                    self._advance(w, tracking)
                    yield w.cursor()
            except BaseException:
                self._positions = self._load_positions()
                raise
            self._positions[tracking.application_name] = tracking.notification_id
        with self._advanced:
            self._advanced.notify_all()

    def _advance(self, w: sqlite3.Connection, tracking: Tracking) -> None:
        name, new = tracking.application_name, tracking.notification_id
        expected = self._positions.get(name)
        if expected is None:
            try:
                w.execute("INSERT INTO tracking VALUES (?, ?)", (name, new))
            except sqlite3.IntegrityError:
                raise TrackingConflictError(
                    f"{self.schema.name}: another writer has started tracking {name}"
                ) from None
            return
        if new <= expected:
            raise TrackingConflictError(
                f"{self.schema.name}: position {new} of {name} is not after {expected}"
            )
        moved = w.execute(
            "UPDATE tracking SET notification_id = ? "
            "WHERE application_name = ? AND notification_id = ?",
            (new, name, expected),
        )
        if moved.rowcount != 1:
            raise TrackingConflictError(
                f"{self.schema.name}: position of {name} moved away from {expected} "
                "(another writer)"
            )

    def insert_tracking(self, tracking: Tracking) -> None:
        """Record a position with no row changes (an event this view ignores)."""
        with self.write(tracking):
            pass

    def max_tracking_id(self, application_name: str) -> int | None:
        with self.read() as conn:
            return tracked_position(conn, application_name)

    def wait(
        self,
        application_name: str,
        notification_id: int | None,
        timeout: float = 1.0,
        interrupt: Event | None = None,
    ) -> None:
        """Block until the view has committed ``notification_id`` or later.

        Woken at once by commits in this process, polls for other processes' commits.
        Raises ``TimeoutError`` after ``timeout`` seconds, ``WaitInterruptedError`` if
        ``interrupt`` is set first.
        """
        deadline = time.monotonic() + timeout
        while True:
            if notification_id is None or self._reached(application_name, notification_id):
                return
            if interrupt is not None and interrupt.is_set():
                raise WaitInterruptedError
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"view {self.schema.name} has not reached position {notification_id} "
                    f"within {timeout} s (it is at {self.position(application_name)})"
                )
            with self._advanced:
                self._advanced.wait(min(remaining, self.poll_interval))

    def _reached(self, application_name: str, notification_id: int) -> bool:
        cached = self._positions.get(application_name)
        if cached is not None and cached >= notification_id:
            return True
        current = self.max_tracking_id(application_name)
        return current is not None and current >= notification_id

    # --- reading ------------------------------------------------------------------

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A connection inside a read transaction (one snapshot), for queries only."""
        with self._lease_lock:
            self._refuse_if_retired()
            self._leases += 1
            conn = self._idle.pop() if self._idle else None
        try:
            if conn is None:
                conn = self._connect()
                conn.execute("PRAGMA query_only=1")
                conn.execute("PRAGMA cache_size=-16384")
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
        finally:
            with self._lease_lock:
                self._leases -= 1
                if conn is not None:
                    if self._retired or len(self._idle) >= self._max_idle:
                        conn.close()
                    else:
                        self._idle.append(conn)
                self._lease_lock.notify_all()

    # --- lifecycle ----------------------------------------------------------------

    def retire(self, *, delete: bool, timeout: float = 30.0) -> None:
        """Refuse new reads and writes, let current reads finish, close; maybe delete."""
        with self._lease_lock:
            self._retired = True
            self._lease_lock.wait_for(lambda: self._leases == 0, timeout=timeout)
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
        with self._write_lock:
            self._writer.close()
        if delete:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def close(self) -> None:
        self.retire(delete=False)

    @property
    def retired(self) -> bool:
        return self._retired

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every table's rows in a canonical order (tests compare views with this)."""
        with self.read() as conn:
            names = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%' AND name != 'view_meta' ORDER BY name"
                )
            ]
            out: dict[str, list[tuple[Any, ...]]] = {}
            for name in names:
                rows = conn.execute(f"SELECT * FROM {name}").fetchall()
                out[name] = sorted(rows, key=lambda r: tuple((v is None, repr(v)) for v in r))
            return out
