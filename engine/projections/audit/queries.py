"""Queries on the audit view: a ticket's history and its state as of a past moment."""

from __future__ import annotations

import sqlite3
from typing import Any
from uuid import UUID

from engine.domain import assignment, escalation, ticket
from engine.domain.assignment import Assignment
from engine.domain.base import DomainEvent
from engine.domain.escalation import Escalation
from engine.domain.ticket import Ticket
from engine.projections.audit.fold import Change, Timeline, reason
from engine.projections.kit.log_reader import LogReader
from engine.projections.kit.models import FieldChange, HistoryEntry, TicketAsOf
from engine.projections.kit.records import EventRecord, from_us
from engine.stores.envelope import decode_envelope, from_envelope

HISTORY_SELECT = "SELECT position, ticket_id, internal FROM history"
POSITION, TICKET_ID, INTERNAL = 0, 1, 2


def entry(row: tuple[Any, ...], record: EventRecord, changes: list[Change]) -> HistoryEntry:
    """A history row as the API shows it (the event's data upcast to the current schema)."""
    return HistoryEntry(
        position=record["position"],
        ticket_id=row[TICKET_ID],
        aggregate_type=record["aggregate_type"],
        aggregate_id=record["aggregate_id"],
        aggregate_version=record["aggregate_version"],
        event_id=record["event_id"],
        type=record["type"],
        occurred_at=from_us(record["at"]),
        actor=record["actor"],
        reason=reason(record),
        changes=[FieldChange(field=f, from_=a, to=b) for f, a, b in changes],
        internal=bool(row[INTERNAL]),
        data=dict(record["data"]),
    )


def history_rows(conn: sqlite3.Connection, ticket_id: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        f"{HISTORY_SELECT} WHERE ticket_id = ? ORDER BY position", (ticket_id,)
    ).fetchall()


def history(
    rows: list[tuple[Any, ...]], log: LogReader, ticket_id: str, include_internal: bool
) -> list[HistoryEntry]:
    """Every event of the ticket in log order, each with the fields it changed; internal
    notes are folded but not shown unless ``include_internal``."""
    records = log.records(row[POSITION] for row in rows)
    timeline = Timeline(ticket_id)
    out = []
    for row in rows:
        record = records[row[POSITION]]
        changes = timeline.apply(record)
        if include_internal or not row[INTERNAL]:
            out.append(entry(row, record, changes))
    return out


def as_of_positions(
    conn: sqlite3.Connection, ticket_id: str, at_us: int | None, position: int | None
) -> list[int]:
    """The ticket's events that occurred at or before ``at_us`` and are at or before
    ``position`` (each bound optional), in log order."""
    where: list[str] = ["ticket_id = ?"]
    params: list[int | str] = [ticket_id]
    if at_us is not None:
        where.append("occurred_us <= ?")
        params.append(at_us)
    if position is not None:
        where.append("position <= ?")
        params.append(position)
    rows = conn.execute(
        f"SELECT position FROM history WHERE {' AND '.join(where)} ORDER BY position", params
    )
    return [row[0] for row in rows]


def as_of(positions: list[int], log: LogReader, ticket_id: str) -> TicketAsOf | None:
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
