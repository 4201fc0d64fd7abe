"""A row of the audit view's ``history`` table as the API shows it: the event read from
the log (its data upcast to the current schema) with the fields it changed."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, cast

from engine.projections.audit.fold import Change, reason
from engine.projections.kit.models import FieldChange, HistoryEntry
from engine.projections.kit.records import EventRecord, from_us

Shown = Callable[[str], Collection[str]]
"""The data fields of each event type a reader may see (engine.app.permissions)."""

HISTORY_SELECT = "SELECT position, ticket_id, internal FROM history"
POSITION, TICKET_ID, INTERNAL = 0, 1, 2


def as_seen(record: EventRecord, shown: Shown | None) -> EventRecord:
    """The event as a reader who may see only the ``shown`` fields of its type sees it:
    the others null, so the timeline folds what the reader may see and nothing else
    (the shared record is not changed)."""
    if shown is None:
        return record
    keep = shown(record["type"])
    data = {k: (v if k in keep else None) for k, v in record["data"].items()}
    return cast(EventRecord, {**record, "data": data})


def entry(
    row: tuple[Any, ...], record: EventRecord, changes: list[Change], shown: Shown | None = None
) -> HistoryEntry:
    """A history row as the API shows it (the event's data upcast to the current schema;
    only the ``shown`` fields, if given)."""
    data = record["data"]
    if shown is not None:
        keep = shown(record["type"])
        data = {k: v for k, v in data.items() if k in keep}
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
        data=dict(data),
    )
