"""Audit export: the history as JSON lines or CSV, with a SHA-256 digest of exactly the
bytes handed out, so a reviewer can check the file they keep.

Each line is one event (CSV: a header line first), in log order, with the fields it
changed. Lines are read in chunks by position, up to the audit view's position when
the export started, so reading the same export again gives the same bytes, even while
new events arrive or the view is rebuilt.

CSV cells a spreadsheet would run as a formula are neutralised (OWASP's CSV injection
rule): a cell whose text starts with ``=``, ``+``, ``-``, ``@``, a tab, a carriage return
(or a NUL, per OWASP ASVS) is written with a single quote before it and in double quotes
(``"'=1+1"``); every other cell is written as before. The digest covers the bytes handed
out, so the neutralised ones. JSON lines carry every value unchanged.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

from engine.projections.audit.entry import (
    HISTORY_SELECT,
    INTERNAL,
    POSITION,
    TICKET_ID,
    Shown,
    as_seen,
    entry,
)
from engine.projections.audit.fold import Timeline
from engine.projections.kit.log_reader import LogReader
from engine.projections.kit.records import EventRecord

ExportFormat = Literal["jsonl", "csv"]
COLUMNS = (
    "position", "ticket_id", "aggregate_type", "aggregate_id", "aggregate_version",
    "event_id", "type", "occurred_at", "actor", "reason", "changes", "internal", "data",
)  # fmt: skip
CHUNK = 1000
TIMELINES = 20_000  # tickets whose fold an export keeps in memory at once
Query = Callable[[sqlite3.Connection], Any]
Reader = Callable[[Query], Any]


class Export(Iterator[str]):
    """An iterator of text lines; ``digest`` is the hex SHA-256 of their UTF-8 bytes,
    available once the iterator is exhausted. Events with ``from_us <= occurred_us <
    to_us`` (bounds optional), of one ticket or all."""

    def __init__(
        self,
        read: Reader,
        *,
        upto: int,
        from_us: int | None,
        to_us: int | None,
        ticket_id: str | None,
        fmt: ExportFormat,
        include_internal: bool,
        log: LogReader,
        shown: Shown | None = None,
    ) -> None:
        if fmt not in ("jsonl", "csv"):
            raise ValueError(f"unknown export format {fmt!r} (jsonl or csv)")
        self.position = upto
        self.fmt: ExportFormat = fmt
        self.media_type = "application/x-ndjson" if fmt == "jsonl" else "text/csv"
        self.count = 0
        self._read = read
        self._from, self._to = from_us, to_us
        self._ticket = ticket_id
        self._internal = include_internal
        self._shown = shown
        self._log = log
        self._sha = hashlib.sha256()
        self._done = False
        self._timelines: OrderedDict[str, Timeline] = OrderedDict()
        self._lines = self._generate()

    @property
    def digest(self) -> str:
        if not self._done:
            raise RuntimeError("the digest is known once every line has been read")
        return self._sha.hexdigest()

    def __next__(self) -> str:
        line = next(self._lines)
        self._sha.update(line.encode("utf-8"))
        return line

    def _bounds(self, conn: sqlite3.Connection) -> tuple[int, int]:
        """Positions that hold every event of the window (exact even if clocks skew)."""
        lo, hi = 0, self.position
        if self._from is not None:
            row = conn.execute(
                "SELECT min(position) FROM history WHERE occurred_us >= ?", (self._from,)
            ).fetchone()
            lo = hi if row[0] is None else row[0] - 1
        if self._to is not None:
            row = conn.execute(
                "SELECT max(position) FROM history WHERE occurred_us < ?", (self._to,)
            ).fetchone()
            hi = min(hi, lo if row[0] is None else row[0])
        return lo, hi

    def _generate(self) -> Iterator[str]:
        if self.fmt == "csv":
            yield csv_line(COLUMNS)
        after, hi = self._read(self._bounds)
        extra, params = ("", []) if self._ticket is None else (" AND ticket_id = ?", [self._ticket])
        sql = f"{HISTORY_SELECT} WHERE position > ? AND position <= ?{extra} ORDER BY position"
        while after < hi:
            query = f"{sql} LIMIT {CHUNK}"
            chunk: list[tuple[Any, ...]] = self._read(_fetch(query, [after, hi, *params]))
            records = self._log.records(row[POSITION] for row in chunk)
            for row in chunk:
                line = self._line(row, records[row[POSITION]])
                if line is not None:
                    yield line
            if len(chunk) < CHUNK:
                break
            after = chunk[-1][POSITION]
        self._done = True

    def _timeline(self, ticket_id: str, position: int) -> Timeline:
        timeline = self._timelines.get(ticket_id)
        if timeline is not None:
            self._timelines.move_to_end(ticket_id)
            return timeline
        timeline = Timeline(ticket_id)
        earlier = self._read(
            lambda conn: conn.execute(
                "SELECT position FROM history WHERE ticket_id = ? AND position < ? "
                "ORDER BY position",
                (ticket_id, position),
            ).fetchall()
        )
        for record in self._log.records(row[0] for row in earlier).values():
            timeline.apply(as_seen(record, self._shown))
        self._timelines[ticket_id] = timeline
        if len(self._timelines) > TIMELINES:
            self._timelines.popitem(last=False)
        return timeline

    def _line(self, row: tuple[Any, ...], record: EventRecord) -> str | None:
        record = as_seen(record, self._shown)
        changes = self._timeline(row[TICKET_ID], row[POSITION]).apply(record)
        if (self._from is not None and record["at"] < self._from) or (
            self._to is not None and record["at"] >= self._to
        ):
            return None
        if row[INTERNAL] and not self._internal:
            return None
        self.count += 1
        item = entry(row, record, changes, self._shown).model_dump(mode="json")
        item["changes"] = [[c["field"], c["from"], c["to"]] for c in item["changes"]]
        if self.fmt == "jsonl":
            return json.dumps(item, separators=(",", ":"), ensure_ascii=False) + "\n"
        return csv_line([_csv_value(item[c]) for c in COLUMNS])


def _fetch(sql: str, params: list[Any]) -> Query:
    return lambda conn: conn.execute(sql, params).fetchall()


def _csv_value(value: Any) -> Any:
    if isinstance(value, bool | list | dict):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return value


FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\0")


def runs_as_formula(value: Any) -> bool:
    """A spreadsheet would read this cell as a formula (its text starts with one of
    FORMULA_START)."""
    return value is not None and str(value).startswith(FORMULA_START)


def neutralised(value: Any) -> str:
    """The cell as text, quoted and prefixed so that it reads as text: ``"'=1+1"``."""
    text = "'" + str(value)
    return '"' + text.replace('"', '""') + '"'


def csv_line(values: Sequence[Any]) -> str:
    """One CSV line (CRLF), each cell as the csv module writes it unless it would run
    as a formula, then neutralised."""
    if not any(runs_as_formula(v) for v in values):
        return _plain_line(values)
    return ",".join(neutralised(v) if runs_as_formula(v) else _plain_cell(v) for v in values) + (
        "\r\n"
    )


def _plain_line(values: Sequence[Any]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(values)
    return out.getvalue()


def _plain_cell(value: Any) -> str:
    # One cell as it would be within a row: a trailing empty cell keeps the csv module
    # from quoting a lone empty cell, and quoting is per cell otherwise.
    return _plain_line([value, ""])[: -len(",\r\n")]
