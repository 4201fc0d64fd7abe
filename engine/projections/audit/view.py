"""The audit view: an index of the log by ticket. One row per event that concerns a
ticket (its Ticket, Assignment and Escalation events): its position, the ticket, when
it occurred and whether it is an internal note. A history, an export or a past state
reads those events from the log itself (``log_reader``) and folds them
(``audit_fold.Timeline``) to show who did what, when, why, and what changed."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from engine.projections.audit.fold import ASSIGNMENT, ESCALATION, TICKET
from engine.projections.kit.projection import Handler, ViewProjection
from engine.projections.kit.records import EventRecord
from engine.projections.kit.store import ViewSchema

SCHEMA = ViewSchema(
    name="audit",
    version=1,
    tables=(
        """CREATE TABLE history (
            position INTEGER PRIMARY KEY, ticket_id TEXT NOT NULL,
            occurred_us INTEGER NOT NULL, internal INTEGER NOT NULL)""",
    ),
    indexes=(
        # Exports find a time window's positions by a scan: no index on time to build.
        "CREATE INDEX ix_history_ticket ON history (ticket_id, position)",
    ),
)
_INSERT = "INSERT INTO history VALUES (?, ?, ?, ?)"


class AuditProjection(ViewProjection):
    name = "audit"
    schema = SCHEMA

    def setup(self) -> Mapping[str, Handler]:
        self._rows: list[tuple[Any, ...]] = []
        return {
            **dict.fromkeys(TICKET, self._ticket_event),
            **dict.fromkeys(ASSIGNMENT, self._routed_event),
            **dict.fromkeys(ESCALATION, self._routed_event),
            "TicketCommented": self._comment,
        }

    def _ticket_event(self, r: EventRecord) -> None:
        self._rows.append((r["position"], r["aggregate_id"], r["at"], 0))

    def _comment(self, r: EventRecord) -> None:
        internal = 1 if r["data"].get("visibility") == "internal" else 0
        self._rows.append((r["position"], r["aggregate_id"], r["at"], internal))

    def _routed_event(self, r: EventRecord) -> None:
        self._rows.append((r["position"], str(r["data"]["ticket_id"]), r["at"], 0))

    def flush(self, cur: sqlite3.Cursor) -> None:
        if self._rows:
            cur.executemany(_INSERT, self._rows)
            self._rows = []

    def reset(self) -> None:
        self._rows = []
