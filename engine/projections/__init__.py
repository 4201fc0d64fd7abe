"""The read side: views of the notification log (queue, audit, reports) in SQLite.

Start at ``Views``; docs/metrics.md defines the report metrics.
"""

from __future__ import annotations

from engine.projections.audit.export import Export, ExportFormat
from engine.projections.kit.catalog import RebuildRunningError
from engine.projections.kit.cursor import InvalidCursorError
from engine.projections.kit.models import (
    AgentReport,
    AgentReportRow,
    AgentWorkload,
    BacklogByAge,
    DurationStats,
    FieldChange,
    HistoryEntry,
    QueueSummary,
    QueueTicket,
    ServiceReport,
    StreamEvent,
    TicketAsOf,
)
from engine.projections.kit.progress import ProgressFn
from engine.projections.views import VIEW_NAMES, Views

__all__ = [
    "VIEW_NAMES",
    "AgentReport",
    "AgentReportRow",
    "AgentWorkload",
    "BacklogByAge",
    "DurationStats",
    "Export",
    "ExportFormat",
    "FieldChange",
    "HistoryEntry",
    "InvalidCursorError",
    "ProgressFn",
    "QueueSummary",
    "QueueTicket",
    "RebuildRunningError",
    "ServiceReport",
    "StreamEvent",
    "TicketAsOf",
    "Views",
]
