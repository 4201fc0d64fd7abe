"""The local SQLite cache of the event topic, from which every read is served.

The cache holds the topic's event records in offset order, each with its
notification id: 1 + the number of event records before it in the topic, so ids are
dense, strictly increasing in commit order and the same in every cache that copies
the same topic (deleting the file and rebuilding it gives identical answers). Only
the tailing consumer (and the writer, for its own events) writes to it; it is owned by
one recorder instance at a time (an exclusive lock on ``<path>.lock``).

Each record is kept with its event id and chain hash (``lineage.py``), so the cache can
recognise what it holds, and takes in a new record only if it continues its chain. Once
the topic is found to hold another history (``diverge``), every read raises
``CacheDivergedError``: the cache never serves a mixture of two histories.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from eventsourcing.persistence import InternalError, OperationalError

from engine.stores.kafka.codec import EventRow
from engine.stores.kafka.errors import CacheDivergedError, Divergence
from engine.stores.kafka.lineage import MISSING, link_problem, mark_of

log = logging.getLogger("engine.stores.kafka")

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS events ("
    " notification_id INTEGER PRIMARY KEY,"
    " kafka_offset INTEGER NOT NULL UNIQUE,"
    " originator_id TEXT NOT NULL,"
    " originator_version INTEGER NOT NULL,"
    " topic TEXT NOT NULL,"
    " state BLOB NOT NULL,"
    " event_id TEXT,"
    " chain_hash TEXT,"
    " UNIQUE (originator_id, originator_version))",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
Key = tuple[str, int]


class EventCache:
    """A copy of one topic partition's event records. Reads are consistent
    snapshots; ``wait_for_offset`` gives read-your-writes once an offset is known.

    Raises ``OperationalError`` when the file is in use by another recorder and
    ``OSError`` when it belongs to another topic.
    """

    def __init__(self, path: Path, topic: str) -> None:
        self.path = path
        self.topic = topic
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fd = lock_exclusively(Path(f"{path}.lock"))
        self._cond = threading.Condition(threading.RLock())
        self._listeners: set[threading.Event] = set()
        self._diverged: CacheDivergedError | None = None
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            for statement in SCHEMA:
                self._conn.execute(statement)
            self._add_marks()
            self._check_topic()
            self._next_offset, self._last_id = self._load_position()
        except BaseException:
            self.close()
            raise

    # -- state -------------------------------------------------------------------

    @property
    def next_offset(self) -> int:
        """The offset after the last record (of any kind) the cache has taken in."""
        return self._next_offset

    @property
    def head(self) -> int:
        """The last notification id (0 if none), even once diverged (for health)."""
        return self._last_id

    @property
    def diverged(self) -> CacheDivergedError | None:
        """Why the cache no longer serves its history, if it does not."""
        return self._diverged

    def diverge(self, error: CacheDivergedError) -> CacheDivergedError:
        """Stop serving this history (the first cause found is kept); wake every
        waiter and listener so that they see it. Returns the cause kept."""
        with self._cond:
            if self._diverged is None:
                self._diverged = error
                log.error("%s", error)
            kept = self._diverged
            self._cond.notify_all()
            listeners = list(self._listeners)
        for listener in listeners:
            listener.set()
        return kept

    def max_notification_id(self) -> int | None:
        self.check_serving()
        return self._last_id or None

    def wait_for_offset(self, offset: int, timeout: float) -> bool:
        """Wait until the cache has taken in every record before ``offset``; raises
        ``CacheDivergedError`` once the cache has diverged."""
        return self._wait_until(lambda: self._next_offset >= offset, timeout)

    def wait_for_notification(self, notification_id: int, timeout: float) -> bool:
        """Wait until the cache holds the event with ``notification_id`` (and so every
        event before it); raises ``CacheDivergedError`` once the cache has diverged."""
        return self._wait_until(lambda: self._last_id >= notification_id, timeout)

    def _wait_until(self, reached: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not reached():
                self.check_serving()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def listen(self, event: threading.Event) -> None:
        with self._cond:
            self._listeners.add(event)

    def unlisten(self, event: threading.Event) -> None:
        with self._cond:
            self._listeners.discard(event)

    # -- writing (the tailer only) -----------------------------------------------

    def ingest(self, records: Sequence[tuple[int, EventRow]], next_offset: int) -> int:
        """Append records read from the topic, in offset order, and move the
        position to ``next_offset``; records already held are skipped. Returns how
        many records were added."""
        with self._cond:
            self.check_serving()
            if not records and next_offset <= self._next_offset:
                return 0
            added = 0
            last_id = self._last_id
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                for offset, row in records:
                    if offset < self._next_offset:
                        self._check_held(offset, row)
                        continue
                    mark = mark_of(row)
                    problem = link_problem(row, mark, self._previous_hash(row))
                    if problem is not None:
                        self._conn.execute("ROLLBACK")
                        raise self.diverge(
                            CacheDivergedError(
                                Divergence(
                                    self.topic,
                                    str(self.path),
                                    f"the record there does not continue the hash chain: "
                                    f"{problem} (another producer, or another history)",
                                    offset=offset,
                                    found=mark.event_id,
                                    cached_up_to=self._next_offset,
                                )
                            )
                        )
                    try:
                        self._conn.execute(
                            "INSERT INTO events VALUES (?,?,?,?,?,?,?,?)",
                            (
                                last_id + 1,
                                offset,
                                row.originator_id,
                                row.originator_version,
                                row.topic,
                                row.state,
                                mark.event_id,
                                mark.hash,
                            ),
                        )
                    except sqlite3.IntegrityError:
                        # The writer never lets this happen; a foreign producer could.
                        log.error(
                            "topic %s offset %d repeats %s version %d: not cached",
                            self.topic,
                            offset,
                            row.originator_id,
                            row.originator_version,
                        )
                        continue
                    last_id += 1
                    added += 1
                position = max(self._next_offset, next_offset)
                self._conn.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('next_offset', ?)", (str(position),)
                )
                self._conn.execute("COMMIT")
            except CacheDivergedError:
                raise
            except sqlite3.Error as e:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise OperationalError(f"cache {self.path}: {e}") from e
            self._next_offset, self._last_id = position, last_id
            self._cond.notify_all()
            listeners = list(self._listeners)
        for listener in listeners:
            listener.set()
        return added

    # -- reading -----------------------------------------------------------------

    def existing(self, keys: Iterable[Key]) -> set[Key]:
        """Those of ``keys`` (originator id, version) that the cache holds."""
        by_originator: dict[str, list[int]] = defaultdict(list)
        for originator_id, version in keys:
            by_originator[originator_id].append(version)
        found: set[Key] = set()
        with self._cond:
            self.check_serving()
            for originator_id, versions in by_originator.items():
                marks = ",".join("?" * len(versions))
                rows = self._conn.execute(
                    "SELECT originator_version FROM events WHERE originator_id=? "
                    f"AND originator_version IN ({marks})",
                    (originator_id, *versions),
                ).fetchall()
                found.update((originator_id, version) for (version,) in rows)
        return found

    def select_events(
        self,
        originator_id: str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[EventRow]:
        sql = (
            "SELECT originator_id, originator_version, topic, state FROM events"
            " WHERE originator_id=?"
        )
        params: list[object] = [originator_id]
        if gt is not None:
            sql += " AND originator_version>?"
            params.append(gt)
        if lte is not None:
            sql += " AND originator_version<=?"
            params.append(lte)
        sql += " ORDER BY originator_version " + ("DESC" if desc else "ASC")
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self._cond:
            self.check_serving()
            rows = self._conn.execute(sql, params).fetchall()
        return [EventRow(o, v, t, bytes(s)) for o, v, t, s in rows]

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> list[tuple[int, EventRow]]:
        sql = "SELECT notification_id, originator_id, originator_version, topic, state FROM events"
        clauses: list[str] = []
        params: list[object] = []
        if start is not None:
            clauses.append("notification_id>=?" if inclusive_of_start else "notification_id>?")
            params.append(start)
        if stop is not None:
            clauses.append("notification_id<=?")
            params.append(stop)
        if topics:
            clauses.append(f"topic IN ({','.join('?' * len(topics))})")
            params.extend(topics)
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY notification_id LIMIT ?"
        params.append(limit)
        with self._cond:
            self.check_serving()
            rows = self._conn.execute(sql, params).fetchall()
        return [(n, EventRow(o, v, t, bytes(s))) for n, o, v, t, s in rows]

    def notification_id(self, originator_id: str, version: int) -> int | None:
        """The notification id of one cached event, or None."""
        with self._cond:
            self.check_serving()
            row = self._conn.execute(
                "SELECT notification_id FROM events WHERE originator_id=? AND originator_version=?",
                (originator_id, version),
            ).fetchone()
        return int(row[0]) if row is not None else None

    def notification_ids(self, offsets: Sequence[int]) -> list[int]:
        """Notification ids of the event records at ``offsets`` (all cached)."""
        ids: dict[int, int] = {}
        with self._cond:
            self.check_serving()
            for chunk in _chunks(list(offsets), 500):
                rows = self._conn.execute(
                    "SELECT kafka_offset, notification_id FROM events "
                    f"WHERE kafka_offset IN ({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
                ids.update(dict(rows))
        missing = [o for o in offsets if o not in ids]
        if missing:
            raise InternalError(f"offsets {missing} of topic {self.topic} are not in the cache")
        return [ids[o] for o in offsets]

    def last_record(self) -> tuple[int, EventRow] | None:
        """The offset and content of the last cached event record (also once
        diverged: it is what the topic is checked against)."""
        with self._cond:
            row = self._conn.execute(
                "SELECT kafka_offset, originator_id, originator_version, topic, state "
                "FROM events ORDER BY notification_id DESC LIMIT 1"
            ).fetchone()
        if row is None:
            return None
        offset, o, v, t, s = row
        return int(offset), EventRow(o, v, t, bytes(s))

    def record_at(self, offset: int) -> EventRow | None:
        """The event record cached at ``offset``, if any (also once diverged)."""
        with self._cond:
            row = self._conn.execute(
                "SELECT originator_id, originator_version, topic, state FROM events "
                "WHERE kafka_offset=?",
                (offset,),
            ).fetchone()
        return None if row is None else EventRow(row[0], row[1], row[2], bytes(row[3]))

    def close(self) -> None:
        with self._cond:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    # -- internals ---------------------------------------------------------------

    def check_serving(self) -> None:
        """Raise ``CacheDivergedError`` if the cache diverged from the topic."""
        if self._diverged is not None:
            # A new instance each time: re-raising one would grow its traceback.
            raise CacheDivergedError(self._diverged.divergence)

    def _check_held(self, offset: int, row: EventRow) -> None:
        """A record at an offset already read must be the one cached there (the
        writer's own events may reach the cache through the tailer first); anything
        else means the topic is not the one cached."""
        found = self._conn.execute(
            "SELECT originator_id, originator_version, topic, state FROM events "
            "WHERE kafka_offset=?",
            (offset,),
        ).fetchone()
        held = None if found is None else EventRow(found[0], found[1], found[2], bytes(found[3]))
        if held == row:
            return
        self._conn.execute("ROLLBACK")
        raise self.diverge(
            CacheDivergedError(
                Divergence(
                    self.topic,
                    str(self.path),
                    "a record was committed at an offset the cache had already read "
                    "otherwise: the topic is not the one the cache copied",
                    offset=offset,
                    cached=None if held is None else mark_of(held).event_id,
                    found=mark_of(row).event_id,
                    cached_up_to=self._next_offset,
                )
            )
        )

    def _previous_hash(self, row: EventRow) -> str | None:
        """The chain hash cached for the previous version of ``row``'s aggregate
        (``MISSING`` if that version is not cached; None if it is no link). Reads the
        open transaction, so earlier records of the same ingest count."""
        if row.originator_version <= 1:
            return None
        found = self._conn.execute(
            "SELECT chain_hash FROM events WHERE originator_id=? AND originator_version=?",
            (row.originator_id, row.originator_version - 1),
        ).fetchone()
        if found is None:
            return MISSING
        return None if found[0] is None else str(found[0])

    def _add_marks(self) -> None:
        """Give a cache file of an earlier release the event id and chain hash of the
        records it holds (read from the records themselves, once)."""
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(events)")}
        if "chain_hash" in columns:
            return
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.execute("ALTER TABLE events ADD COLUMN event_id TEXT")
            self._conn.execute("ALTER TABLE events ADD COLUMN chain_hash TEXT")
            rows = self._conn.execute(
                "SELECT kafka_offset, originator_id, originator_version, topic, state FROM events"
            ).fetchall()
            for offset, o, v, t, state in rows:
                mark = mark_of(EventRow(o, v, t, bytes(state)))
                self._conn.execute(
                    "UPDATE events SET event_id=?, chain_hash=? WHERE kafka_offset=?",
                    (mark.event_id, mark.hash, offset),
                )
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        log.info("cache %s: marked its %d records with event ids and hashes", self.path, len(rows))

    def _check_topic(self) -> None:
        row = self._conn.execute("SELECT value FROM meta WHERE key='topic'").fetchone()
        if row is None:
            self._conn.execute("INSERT INTO meta VALUES ('topic', ?)", (self.topic,))
        elif row[0] != self.topic:
            raise OSError(
                f"cache file {self.path} holds topic {row[0]!r}, not {self.topic!r}: "
                "set KAFKA_CACHE_PATH to a file of its own for each topic"
            )

    def _load_position(self) -> tuple[int, int]:
        row = self._conn.execute("SELECT value FROM meta WHERE key='next_offset'").fetchone()
        (last_id,) = self._conn.execute("SELECT MAX(notification_id) FROM events").fetchone()
        return (int(row[0]) if row else 0), int(last_id or 0)


def lock_exclusively(path: Path) -> int | None:
    """Lock the cache's lock file (a file descriptor: close it to unlock); raises
    ``OperationalError`` if another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise OperationalError(
            f"cache file {path.with_suffix('')} is in use by another recorder; "
            "give each process its own KAFKA_CACHE_PATH"
        ) from None
    return fd


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
