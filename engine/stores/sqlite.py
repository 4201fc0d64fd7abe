"""The embedded event store: eventsourcing's SQLite recorder, with append conditions
(``engine.stores.conditions``) checked inside the append's own transaction.

Select it with ``PERSISTENCE_MODULE=engine.stores.sqlite`` (and the library's
``SQLITE_DBNAME`` and other keys).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import eventsourcing.sqlite as es_sqlite
from eventsourcing.persistence import StoredEvent

from engine.stores.conditions import ConditionalRecorder, failed, read_only


class SQLiteConditionalRecorder(es_sqlite.SQLiteApplicationRecorder, ConditionalRecorder):
    """Inserts the events, then, in the same transaction (which holds SQLite's write
    lock since the first insert, so it reads the latest commit), checks that every
    stream named in ``conditions`` and not written has no version after the one given;
    a failed check rolls the whole append back."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        conditions = read_only(kwargs.pop("conditions", None), stored_events)
        with self.datastore.transaction(commit=True) as c:
            ids = self._insert_events(c, stored_events, **kwargs)
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
