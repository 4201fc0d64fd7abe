"""What every view's queries share: the base class they are methods of (mixed into
``Views``), WHERE clauses of optional filters, keyset pages, limits and ids."""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from engine.integrity.keystore import KeyStore
from engine.projections.kit.cursor import decode_cursor, encode_cursor
from engine.projections.kit.store import tracked_position

T = TypeVar("T")
Row = tuple[Any, ...]


class ViewQueries(ABC):
    """The base of each view's queries: they read through ``_read``, which ``Views``
    implements over the current generation of each view."""

    upstream: str
    """The application name under which the views track the log's positions."""
    keys: KeyStore | None
    """Opens the personal fields the views keep sealed (None: they read as erased)."""

    @abstractmethod
    def _read(self, name: str, query: Callable[[sqlite3.Connection], T]) -> T:
        """``query`` run on one snapshot of the view ``name``."""

    def _tracked(self, conn: sqlite3.Connection) -> int:
        """The position of the snapshot ``conn`` reads (0 before the first event)."""
        return tracked_position(conn, self.upstream) or 0


def id_text(value: UUID | str) -> str:
    """An id as the views store it (canonical UUID text); ValueError if not a UUID."""
    return str(UUID(str(value)))


def check_limit(limit: int, maximum: int) -> int:
    if not 1 <= limit <= maximum:
        raise ValueError(f"limit must be between 1 and {maximum}")
    return limit


class Where:
    """A WHERE clause: conditions joined by AND, with their parameters in order."""

    def __init__(self, *conditions: str, params: Sequence[Any] = ()) -> None:
        self.conditions = list(conditions)
        self.params = list(params)

    def add(self, condition: str, *params: Any) -> None:
        self.conditions.append(condition)
        self.params += params

    def given(self, condition: str, value: Any) -> None:
        """Add ``condition`` with its one parameter, unless the filter is not set (None)."""
        if value is not None:
            self.add(condition, value)

    def __str__(self) -> str:
        return " AND ".join(self.conditions)


@dataclass(frozen=True)
class Keyset:
    """A sort order that pages follow: cursors of kind ``kind`` hold the values of the
    ``columns`` found at ``key`` (indexes into a row) of a page's last row."""

    kind: str
    columns: tuple[str, ...]
    key: tuple[int, ...]
    descending: bool = False

    @property
    def order(self) -> str:
        return ", ".join(f"{c} DESC" for c in self.columns) if self.descending else self.sql

    @property
    def sql(self) -> str:
        return ", ".join(self.columns)


def page(
    conn: sqlite3.Connection,
    select: str,
    where: Where,
    keyset: Keyset,
    *,
    limit: int,
    maximum: int,
    cursor: str | None,
) -> tuple[list[Row], str | None]:
    """The rows of ``select`` that ``where`` keeps, in ``keyset`` order after
    ``cursor``, at most ``limit``; and the next page's cursor (None on the last page).
    ``InvalidCursorError`` if the cursor is not of this keyset's kind."""
    if cursor is not None:
        where = Where(*where.conditions, params=where.params)
        after = "<" if keyset.descending else ">"
        where.add(
            f"({keyset.sql}) {after} ({', '.join('?' * len(keyset.columns))})",
            *decode_cursor(keyset.kind, cursor, len(keyset.columns)),
        )
    limit = check_limit(limit, maximum)
    rows = conn.execute(
        f"{select} WHERE {where} ORDER BY {keyset.order} LIMIT ?", (*where.params, limit + 1)
    ).fetchall()
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(keyset.kind, [rows[-1][i] for i in keyset.key])


SCAN_CHUNK = 500
"""Rows read at a time by ``filtered_page``."""


def filtered_page(
    conn: sqlite3.Connection,
    select: str,
    where: Where,
    keyset: Keyset,
    keep: Callable[[Row], bool],
    *,
    limit: int,
    maximum: int,
    cursor: str | None,
) -> tuple[list[Row], str | None]:
    """``page``, keeping only the rows ``keep`` accepts: a filter SQL cannot apply (a
    match in a field kept sealed, once opened). Reads the order in chunks until the page
    is full; the next cursor follows the page's last kept row (None: no more kept)."""
    limit = check_limit(limit, maximum)
    kept: list[Row] = []
    while True:
        rows, next_cursor = page(
            conn, select, where, keyset, limit=SCAN_CHUNK, maximum=SCAN_CHUNK, cursor=cursor
        )
        for row in rows:
            if keep(row):
                if len(kept) == limit:  # one more kept row: there is a next page
                    return kept, encode_cursor(keyset.kind, [kept[-1][i] for i in keyset.key])
                kept.append(row)
        if next_cursor is None:
            return kept, None
        cursor = next_cursor
