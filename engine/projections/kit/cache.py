"""Write-behind rows: a view edits rows in memory and writes each changed row once per
batch, in the batch's transaction.

A batch touches the same ticket many times (opened, triaged, routed, ...); folding in
memory and writing once is what makes a rebuild fast. The cache only ever holds
committed rows plus the current batch's edits: after a failed batch the owner calls
``reset()`` and the next batch reads the committed rows again.

Rows are flat dicts of scalars: edit them by assignment (``row["x"] = y``).

While a rebuild fills a new generation nobody reads yet, a cache can *hold* its rows
(``hold()``): an edited row stays in memory across batches and is written once, when
it is let go of or when the build ends (``release()`` then ``flush``), rather than at
the end of every batch that touches it. The file is only trusted once the build ends.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from itertools import islice
from operator import itemgetter
from typing import Any

Row = dict[str, Any]


class RowCache:
    """Rows of one table keyed by ``key`` (its first column), loaded on demand, least
    recently edited ones dropped first when more than ``max_rows`` are held.

    ``rowid`` names the table's INTEGER PRIMARY KEY when the key is only UNIQUE: rows
    are then updated by rowid. Giving rows increasing rowids (the position of the event
    that made them) keeps a batch's writes on a few pages at the end of the table,
    instead of one page per row for random keys such as UUIDs.
    """

    def __init__(
        self,
        table: str,
        key: str,
        columns: Sequence[str],
        *,
        max_rows: int = 20_000,
        retain: bool = True,
        rowid: str | None = None,
    ) -> None:
        if columns[0] != key:
            raise ValueError("the key must be the first column")
        self.table = table
        self.key = key
        self.columns = tuple(columns)
        self.max_rows = max_rows
        self.retain = retain
        names = ", ".join(columns)
        self._select = f"SELECT {names} FROM {table} WHERE {key} = ?"
        self._select_rowid = f"SELECT {names} FROM {table} WHERE {rowid or key} = ?"
        self._rowid = rowid
        # A plain INSERT: a new row is one this cache found absent, so a clash would
        # mean a bug and fails the batch rather than overwrite a row.
        self._insert = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})"
        where = rowid or key
        changing = [c for c in columns if c not in (key, where)]
        self._update = (
            f"UPDATE {table} SET {', '.join(f'{c} = ?' for c in changing)} WHERE {where} = ?"
        )
        self._insert_values = itemgetter(*columns)
        self._update_values = itemgetter(*changing, where)
        self._rows: dict[Any, Row] = {}
        self._baseline: dict[Any, Row | None] = {}
        self._keys: dict[Any, Any] | None = None
        self._held = False

    def track_all_keys(self) -> None:
        """The table is empty and only this cache writes it: remember every key (and
        its rowid), so a key never seen needs no lookup and a known one is found by
        rowid, with no index on the key (a bulk build adds that index at its end)."""
        self._keys = {}

    def rows(self) -> Iterator[tuple[Any, Row]]:
        """The rows held in memory (committed or edited in this batch)."""
        return iter(list(self._rows.items()))

    def hold(self) -> None:
        """Write rows only when they are let go of or after ``release()``: ``flush``
        no longer writes every changed row (only for caches that retain rows)."""
        self._held = self.retain

    def release(self) -> None:
        """Stop holding: the next ``flush`` writes every row changed since held."""
        self._held = False

    @property
    def held(self) -> bool:
        return self._held

    def forget_keys(self) -> None:
        """Stop remembering every key (an index on the key exists now)."""
        self._keys = None

    def get(self, cur: sqlite3.Cursor, key: Any) -> Row | None:
        """The row to read (do not edit it: use ``edit``)."""
        row = self._rows.get(key)
        if row is None and (self._keys is None or key in self._keys):
            if self._keys is None:
                found = cur.execute(self._select, (key,)).fetchone()
            else:
                found = cur.execute(self._select_rowid, (self._keys[key],)).fetchone()
            if found is not None:
                row = self._rows[key] = dict(zip(self.columns, found, strict=True))
        return row

    def edit(self, cur: sqlite3.Cursor, key: Any) -> Row | None:
        """The row to edit in place; it will be written when the batch flushes."""
        rows = self._rows
        row = rows.get(key)
        if row is None:
            row = self.get(cur, key)
            if row is None:
                return None
        if key not in self._baseline:
            self._baseline[key] = dict(row)
            rows[key] = rows.pop(key)  # now the most recently edited
        elif self._held:  # held rows stay changed across batches: keep the order
            rows[key] = rows.pop(key)
        return row

    def add(self, cur: sqlite3.Cursor, row: Row) -> Row:
        """Insert (or replace) a row; it will be written when the batch flushes."""
        key = row[self.key]
        if key is None:
            raise ValueError(f"a {self.table} row needs its {self.key}")
        if key not in self._baseline:
            old = self.get(cur, key)
            self._baseline[key] = None if old is None else dict(old)
        self._rows.pop(key, None)
        return self._put(key, row)

    def insert(self, row: Row) -> Row:
        """Add a row known to be new (keyed by a position, say): no lookup first."""
        key = row[self.key]
        if key not in self._baseline:
            self._baseline[key] = None
        return self._put(key, row)

    def _put(self, key: Any, row: Row) -> Row:
        self._rows[key] = row
        if self._keys is not None:
            self._keys[key] = row[self._rowid] if self._rowid else key
        return row

    def flush(self, cur: sqlite3.Cursor) -> list[tuple[Row | None, Row]]:
        """Write the batch's changed rows (held: only those let go of); returns them as
        (before, after) pairs, before being the row as last written."""
        if self._held:
            return self._let_go(cur)
        changed = self._write(cur, list(self._baseline))
        self._baseline.clear()
        if not self.retain:
            self._rows.clear()
        elif len(self._rows) > self.max_rows:
            for key in list(islice(self._rows, len(self._rows) - self.max_rows // 2)):
                del self._rows[key]
        return changed

    def _let_go(self, cur: sqlite3.Cursor) -> list[tuple[Row | None, Row]]:
        """Held: write and drop the least recently edited rows beyond ``max_rows``."""
        if len(self._rows) <= self.max_rows:
            return []
        keys = list(islice(self._rows, len(self._rows) - self.max_rows // 2))
        changed = self._write(cur, [key for key in keys if key in self._baseline])
        for key in keys:
            del self._rows[key]
            self._baseline.pop(key, None)
        return changed

    def _write(self, cur: sqlite3.Cursor, keys: Sequence[Any]) -> list[tuple[Row | None, Row]]:
        baseline, rows = self._baseline, self._rows
        changed = [
            (before, after) for key in keys if (after := rows[key]) != (before := baseline[key])
        ]
        if changed:
            new = [self._insert_values(after) for before, after in changed if before is None]
            old = [self._update_values(after) for before, after in changed if before is not None]
            if new:
                cur.executemany(self._insert, new)
            if old:
                cur.executemany(self._update, old)
        return changed

    def reset(self) -> None:
        """Forget everything (after a failed batch): the next reads go to the table."""
        self._rows.clear()
        self._baseline.clear()
        self._keys = None
