"""Queries on the audit view: a ticket's history, its state as of a past moment, and
the audit export."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any
from uuid import UUID

from engine.domain import assignment, escalation, ticket
from engine.domain.assignment import Assignment
from engine.domain.base import DomainEvent
from engine.domain.escalation import Escalation
from engine.domain.ticket import Ticket
from engine.projections.audit.entry import (
    HISTORY_SELECT,
    INTERNAL,
    POSITION,
    Shown,
    as_seen,
    entry,
)
from engine.projections.audit.export import Export, ExportFormat
from engine.projections.audit.fold import Timeline
from engine.projections.kit.log_reader import LogReader
from engine.projections.kit.models import HistoryEntry, TicketAsOf
from engine.projections.kit.queries import ViewQueries, Where, id_text
from engine.projections.kit.records import to_us
from engine.stores.envelope import decode_envelope, from_envelope


class AuditQueries(ViewQueries):
    """The audit view's queries (methods of ``Views``); histories and past states are
    folded from the log's own events, which the view indexes by ticket."""

    _log: LogReader
    """Reads events from the log, unsealing personal fields where keys allow."""

    def history(
        self, ticket_id: UUID | str, include_internal: bool = True, shown: Shown | None = None
    ) -> list[HistoryEntry]:
        """The ticket's timeline; a reader who may see only some fields (``shown``: the
        fields of each event type) sees only those, in ``data`` and in the changes."""
        key = id_text(ticket_id)
        rows = self._read("audit", lambda conn: _history_rows(conn, key))
        return _history(rows, self._log, key, include_internal, shown)

    def ticket_as_of(
        self, ticket_id: UUID | str, at: datetime | None = None, position: int | None = None
    ) -> TicketAsOf | None:
        key, at_us = id_text(ticket_id), None if at is None else to_us(at)
        positions = self._read("audit", lambda conn: _as_of_positions(conn, key, at_us, position))
        return _as_of(positions, self._log, key)

    def export(
        self,
        from_: datetime | None = None,
        to: datetime | None = None,
        ticket_id: UUID | str | None = None,
        fmt: ExportFormat = "jsonl",
        include_internal: bool = True,
        shown: Shown | None = None,
    ) -> Export:
        """The audit history (events with from_ <= occurred_at < to) as lines; read
        ``.digest`` once exhausted."""
        return Export(
            lambda query: self._read("audit", query),
            upto=self._read("audit", self._tracked),
            from_us=None if from_ is None else to_us(from_),
            to_us=None if to is None else to_us(to),
            ticket_id=None if ticket_id is None else id_text(ticket_id),
            fmt=fmt,
            include_internal=include_internal,
            shown=shown,
            log=self._log,
        )


def _history_rows(conn: sqlite3.Connection, ticket_id: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        f"{HISTORY_SELECT} WHERE ticket_id = ? ORDER BY position", (ticket_id,)
    ).fetchall()


def _history(
    rows: list[tuple[Any, ...]],
    log: LogReader,
    ticket_id: str,
    include_internal: bool,
    shown: Shown | None,
) -> list[HistoryEntry]:
    """Every event of the ticket in log order, each with the fields it changed; internal
    notes are folded but not shown unless ``include_internal``."""
    records = log.records(row[POSITION] for row in rows)
    timeline = Timeline(ticket_id)
    out = []
    for row in rows:
        record = as_seen(records[row[POSITION]], shown)
        changes = timeline.apply(record)
        if include_internal or not row[INTERNAL]:
            out.append(entry(row, record, changes, shown))
    return out


def _as_of_positions(
    conn: sqlite3.Connection, ticket_id: str, at_us: int | None, position: int | None
) -> list[int]:
    """The ticket's events that occurred at or before ``at_us`` and are at or before
    ``position`` (each bound optional), in log order."""
    where = Where("ticket_id = ?", params=[ticket_id])
    where.given("occurred_us <= ?", at_us)
    where.given("position <= ?", position)
    rows = conn.execute(
        f"SELECT position FROM history WHERE {where} ORDER BY position", where.params
    )
    return [row[0] for row in rows]


def _as_of(positions: list[int], log: LogReader, ticket_id: str) -> TicketAsOf | None:
    """The ticket folded by the domain from these events; None if it did not exist yet."""
    state: Ticket | None = None
    routing = assignment.empty(UUID(ticket_id))
    escalations: dict[UUID, Escalation] = {}
    last = 0
    for pos, raw in log.raw(positions).items():
        event: DomainEvent = from_envelope(decode_envelope(raw), log.keys)
        aggregate_type = event.aggregate_type
        if aggregate_type == "Ticket":
            state = ticket.evolve(state, event)
        elif aggregate_type == "Assignment":
            routing = assignment.evolve(routing, event)
        elif aggregate_type == "Escalation":
            eid = event.originator_id
            escalations[eid] = escalation.evolve(escalations.get(eid), event)
        last = pos
    if state is None:
        return None
    return TicketAsOf(
        position=last,
        status=ticket.public_status(state, routing.agent_id),
        ticket=state,
        assignment=Assignment.model_validate(routing),
        escalations=list(escalations.values()),
    )
