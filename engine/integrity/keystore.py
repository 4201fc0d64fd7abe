"""Per-data-subject encryption keys, kept outside the event log.

Destroying a subject's key makes every copy of their personal data unreadable (in the
store, on the Kafka topic, in exports and backups): crypto-shredding.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from abc import ABC, abstractmethod
from pathlib import Path

from eventsourcing.persistence import OperationalError

from engine.domain.base import RuleViolationError


class KeyStore(ABC):
    """Promises: ``key_for`` returns the same key for a subject until it is destroyed;
    after ``destroy`` it returns None forever and ``create`` refuses the subject."""

    @abstractmethod
    def key_for(self, subject_id: str) -> bytes | None: ...

    @abstractmethod
    def get_or_create(self, subject_id: str) -> bytes: ...

    @abstractmethod
    def destroy(self, subject_id: str) -> bool: ...

    @abstractmethod
    def is_erased(self, subject_id: str) -> bool: ...


class SubjectErasedError(RuleViolationError):
    """Personal data of an erased subject cannot be recorded again under the old key."""


class MemoryKeyStore(KeyStore):
    def __init__(self) -> None:
        self._keys: dict[str, bytes] = {}
        self._erased: set[str] = set()
        self._lock = threading.Lock()

    def key_for(self, subject_id: str) -> bytes | None:
        return self._keys.get(subject_id)

    def get_or_create(self, subject_id: str) -> bytes:
        with self._lock:
            if subject_id in self._erased:
                raise SubjectErasedError(f"data subject {subject_id} was erased")
            return self._keys.setdefault(subject_id, os.urandom(32))

    def destroy(self, subject_id: str) -> bool:
        with self._lock:
            self._erased.add(subject_id)
            return self._keys.pop(subject_id, None) is not None

    def is_erased(self, subject_id: str) -> bool:
        return subject_id in self._erased


class SQLiteKeyStore(KeyStore):
    """Keys in ``keys.sqlite`` in the data directory. Destroyed keys are overwritten
    and deleted, and the subject is remembered as erased.

    Promises: once ``destroy`` returns, no byte of the key is in any file of the key
    store. That is why it keeps a rollback journal (``journal_mode=DELETE``) and not a
    write-ahead log: with ``secure_delete`` the commit rewrites the key's page in place
    with the key zeroed and then deletes the journal, the only other file that held the
    old page. A WAL keeps the old page in ``-wal`` and the main file until a checkpoint,
    and a checkpoint cannot complete while any other connection (another thread, or
    another process sharing the key store) reads an older snapshot. Temporary data stays
    in memory (``temp_store=MEMORY``). Opening a key store left in WAL mode converts it,
    which checkpoints and deletes its WAL.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._local = threading.local()
        self._lock = threading.Lock()
        with self._conn() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS subject_keys (subject_id TEXT PRIMARY KEY, "
                "key BLOB, erased_at TEXT)"
            )

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, timeout=10, isolation_level=None)
            conn.execute("PRAGMA secure_delete=ON")
            conn.execute("PRAGMA temp_store=MEMORY")
            (mode,) = conn.execute("PRAGMA journal_mode=DELETE").fetchone()
            if str(mode).lower() != "delete":
                # Still WAL: another process holds the file open in WAL mode; an erasure
                # here could leave the key in the WAL, so refuse rather than pretend.
                conn.close()
                raise OperationalError(
                    f"the key store {self._path} is in {mode} mode and cannot be switched "
                    "to a rollback journal while another process has it open"
                )
            self._local.conn = conn
        return conn

    def key_for(self, subject_id: str) -> bytes | None:
        # Not cached: another process sharing this key store may destroy a key, and
        # the erasure must take effect there at once.
        row = (
            self._conn()
            .execute("SELECT key FROM subject_keys WHERE subject_id = ?", (subject_id,))
            .fetchone()
        )
        if row is None or row[0] is None:
            return None
        return bytes(row[0])

    def get_or_create(self, subject_id: str) -> bytes:
        existing = self.key_for(subject_id)
        if existing is not None:
            return existing
        conn = self._conn()
        with self._lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
                row = conn.execute(
                    "SELECT key, erased_at FROM subject_keys WHERE subject_id = ?", (subject_id,)
                ).fetchone()
                if row is not None and row[1] is not None:
                    raise SubjectErasedError(f"data subject {subject_id} was erased")
                if row is None:
                    conn.execute(
                        "INSERT INTO subject_keys (subject_id, key) VALUES (?, ?)",
                        (subject_id, os.urandom(32)),
                    )
                conn.execute("COMMIT")
            except BaseException as e:
                if conn.in_transaction:  # SQLite may have rolled back by itself (disk full)
                    conn.execute("ROLLBACK")
                if isinstance(e, sqlite3.Error):
                    raise OperationalError(f"the key store cannot record a key: {e}") from None
                raise
        key = self.key_for(subject_id)
        assert key is not None
        return key

    def destroy(self, subject_id: str) -> bool:
        conn = self._conn()
        with self._lock:
            had = conn.execute(
                "SELECT key FROM subject_keys WHERE subject_id = ? AND key IS NOT NULL",
                (subject_id,),
            ).fetchone()
            conn.execute(
                "INSERT INTO subject_keys (subject_id, key, erased_at) "
                "VALUES (?, NULL, datetime('now')) ON CONFLICT(subject_id) DO UPDATE "
                "SET key = NULL, erased_at = datetime('now')",
                (subject_id,),
            )
        return had is not None

    def is_erased(self, subject_id: str) -> bool:
        row = (
            self._conn()
            .execute("SELECT erased_at FROM subject_keys WHERE subject_id = ?", (subject_id,))
            .fetchone()
        )
        return row is not None and row[0] is not None
