"""A row of the audit view's ``history`` table as the API shows it: the event read from
the log (its data upcast to the current schema) with the fields it changed."""

from __future__ import annotations

from typing import Any

from engine.projections.audit.fold import Change, reason
from engine.projections.kit.models import FieldChange, HistoryEntry
from engine.projections.kit.records import EventRecord, from_us

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
