"""The embedded event store: eventsourcing's SQLite recorder, with append conditions
(``engine.stores.conditions``) checked inside the append's own transaction.

Select it with ``PERSISTENCE_MODULE=engine.stores.sqlite`` (and the library's
``SQLITE_DBNAME`` and other keys).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import eventsourcing.sqlite as es_sqlite
from eventsourcing.persistence import IntegrityError, StoredEvent

from engine.stores.conditions import (
    ConditionalRecorder,
    ConditionFailedError,
    failed,
    read_only,
)
from engine.stores.group_commit import GroupCommit, Pending

Append = tuple[Sequence[StoredEvent], dict[str, int]]


class SQLiteConditionalRecorder(es_sqlite.SQLiteApplicationRecorder, ConditionalRecorder):
    """Inserts the events, then, in the same transaction (which holds SQLite's write
    lock since the first insert, so it reads the latest commit), checks that every
    stream named in ``conditions`` and not written has no version after the one given;
    a failed check rolls the append back.

    Appends that arrive together share one transaction (``engine.stores.group_commit``):
    each in its own savepoint, so a conflict fails only its own append."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches: GroupCommit[Append, Sequence[int]] = GroupCommit(self._commit_batch)

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        conditions = read_only(kwargs.pop("conditions", None), stored_events)
        return self.batches.submit((stored_events, conditions))

    def _commit_batch(self, batch: Sequence[Pending[Append, Sequence[int]]]) -> None:
        if len(batch) == 1:  # alone: its own transaction is its savepoint
            try:
                with self.datastore.transaction(commit=True) as c:
                    batch[0].result = self._insert_checked(c, *batch[0].append)
            except IntegrityError as e:  # a conflict (ConditionFailedError is one too)
                batch[0].result, batch[0].error = None, e
            return
        with self.datastore.transaction(commit=True) as c:
            for pending in batch:
                c.execute("SAVEPOINT append")
                try:
                    pending.result = self._insert_checked(c, *pending.append)
                except (sqlite3.IntegrityError, ConditionFailedError) as e:
                    c.execute("ROLLBACK TO append")
                    pending.error = e if isinstance(e, ConditionFailedError) else IntegrityError(e)
                c.execute("RELEASE append")

    def _insert_checked(
        self, c: es_sqlite.SQLiteCursor, events: Sequence[StoredEvent], conditions: dict[str, int]
    ) -> Sequence[int]:
        ids = self._insert_events(c, events)
        assert ids is not None  # the application recorder returns the rowids
        for oid, version in conditions.items():
            c.execute(
                f"SELECT 1 FROM {self.events_table_name} "
                "WHERE originator_id=? AND originator_version>? LIMIT 1",
                (_key(oid), version),
            )
            if c.fetchone() is not None:
                raise failed(oid, version)
        return ids

    def position_of(self, originator_id: UUID | str, version: int) -> int | None:
        """The notification id (rowid) of one stored event, or None."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT rowid FROM {self.events_table_name} "
                "WHERE originator_id=? AND originator_version=?",
                (_key(str(originator_id)), version),
            )
            row = c.fetchone()
        return int(row["rowid"]) if row is not None else None


def _key(oid: str) -> str:
    """The id as eventsourcing's SQLite recorder stores it (a UUID as 32 hex digits)."""
    try:
        return UUID(oid).hex
    except ValueError:
        return oid


class Factory(es_sqlite.SQLiteFactory):
    application_recorder_class = SQLiteConditionalRecorder
