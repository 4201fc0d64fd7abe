"""The lead's reports, computed from the reports view's tables (docs/metrics.md).

A window is ``[from, to)``: an event counts when ``from <= occurred_at < to``. Every
report reads one snapshot of the view.
"""

from __future__ import annotations

import math
import sqlite3
import statistics
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from engine.integrity.keystore import KeyStore
from engine.projections.kit.models import (
    AgentReport,
    AgentReportRow,
    BacklogByAge,
    DurationStats,
    ServiceReport,
    SlaCompliance,
    TargetCompliance,
)
from engine.projections.kit.projection import opened as open_kept
from engine.projections.kit.projection import query_keys
from engine.projections.kit.queries import ViewQueries
from engine.projections.kit.records import to_us

US_PER_DAY = 86_400_000_000
AGE_BUCKETS = ((1, "under_1d"), (3, "from_1d_to_3d"), (7, "from_3d_to_7d"), (30, "from_7d_to_30d"))


class ReportQueries(ViewQueries):
    """The lead's reports (methods of ``Views``), each over a window ``[from_, to)``."""

    def service_report(
        self, from_: datetime, to: datetime, queue: str | None = None
    ) -> ServiceReport:
        f, t = _window(from_, to)

        def compute(conn: sqlite3.Connection) -> ServiceReport:
            opened_, escalated = opened(conn, f, t, queue)
            resolution_times, reopened = resolutions(conn, f, t, queue)
            csat_average, csat_responses = csat(conn, f, t, queue)
            return ServiceReport(
                from_=from_,
                to=to,
                queue=queue,
                opened=opened_,
                resolved=len(resolution_times),
                backlog=backlog(conn, t, queue),
                first_response=duration_stats(first_responses(conn, f, t, queue)),
                resolution=duration_stats(resolution_times),
                reopen_rate=_rate(reopened, len(resolution_times)),
                escalation_rate=_rate(escalated, opened_),
                csat_average=csat_average,
                csat_responses=csat_responses,
                sla=sla_compliance(conn, f, t, queue),
                position=self._tracked(conn),
            )

        return self._read("reports", compute)

    def agent_report(self, from_: datetime, to: datetime) -> AgentReport:
        f, t = _window(from_, to)
        return self._read(
            "reports",
            lambda conn: AgentReport(
                from_=from_,
                to=to,
                agents=agent_rows(conn, f, t, query_keys(self.keys)),
                position=self._tracked(conn),
            ),
        )


def _window(from_: datetime, to: datetime) -> tuple[int, int]:
    f, t = to_us(from_), to_us(to)
    if f >= t:
        raise ValueError("the window's start must be before its end")
    return f, t


def duration_stats(micros: Sequence[int]) -> DurationStats:
    """Median (mean of the two middle values for an even count) and p90 (nearest rank:
    the smallest value with at least 90 % of the values at or below it), in seconds."""
    if not micros:
        return DurationStats(count=0, median_seconds=None, p90_seconds=None)
    ordered = sorted(micros)
    p90 = ordered[math.ceil(0.9 * len(ordered)) - 1]
    return DurationStats(
        count=len(ordered),
        median_seconds=statistics.median(ordered) / 1e6,
        p90_seconds=p90 / 1e6,
    )


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _queue(column: str, queue: str | None) -> tuple[str, list[Any]]:
    return ("", []) if queue is None else (f" AND {column} = ?", [queue])


def opened(conn: sqlite3.Connection, f: int, t: int, queue: str | None) -> tuple[int, int]:
    """Tickets opened in the window, and how many of them were escalated before ``to``."""
    extra, params = _queue("first_queue", queue)
    row = conn.execute(
        "SELECT count(*), coalesce(sum(escalated_us IS NOT NULL AND escalated_us < ?), 0) "
        f"FROM tickets WHERE opened_us >= ? AND opened_us < ?{extra}",
        (t, f, t, *params),
    ).fetchone()
    return int(row[0]), int(row[1])


def first_responses(conn: sqlite3.Connection, f: int, t: int, queue: str | None) -> list[int]:
    extra, params = _queue("first_response_queue", queue)
    rows = conn.execute(
        "SELECT first_response_us - opened_us FROM tickets "
        f"WHERE first_response_us >= ? AND first_response_us < ?{extra}",
        (f, t, *params),
    )
    return [r[0] for r in rows]


def resolutions(
    conn: sqlite3.Connection, f: int, t: int, queue: str | None
) -> tuple[list[int], int]:
    """Per ticket resolved in the window: time from opening to its last resolution in the
    window; and how many of those tickets were reopened after one of them, before ``to``."""
    extra, params = _queue("queue", queue)
    rows = conn.execute(
        "SELECT max(resolved_us) - max(opened_us), "
        "max(reopened_us IS NOT NULL AND reopened_us < ?) FROM resolutions "
        f"WHERE resolved_us >= ? AND resolved_us < ?{extra} GROUP BY ticket_id",
        (t, f, t, *params),
    ).fetchall()
    return [r[0] for r in rows], sum(r[1] for r in rows)


def csat(conn: sqlite3.Connection, f: int, t: int, queue: str | None) -> tuple[float | None, int]:
    extra, params = _queue("queue", queue)
    row = conn.execute(
        f"SELECT avg(score), count(*) FROM ratings WHERE rated_us >= ? AND rated_us < ?{extra}",
        (f, t, *params),
    ).fetchone()
    return (None if row[0] is None else float(row[0])), int(row[1])


def _compliance(rows: Sequence[tuple[Any, ...]]) -> SlaCompliance:
    """From (ticket, target, outcome, within) rows in log order: per target, the tickets
    met in the window (the last met in the window decides whether on time) and the
    tickets breached in the window."""
    met: dict[str, dict[str, bool]] = {"first_response": {}, "resolution": {}}
    breached: dict[str, set[str]] = {"first_response": set(), "resolution": set()}
    for ticket_id, target, outcome, within in rows:
        if outcome == "met":
            met[target][ticket_id] = bool(within)
        else:
            breached[target].add(ticket_id)
    parts = {}
    for target, tickets in met.items():
        on_time = sum(tickets.values())
        parts[target] = TargetCompliance(
            measured=len(tickets),
            within_target=on_time,
            rate=_rate(on_time, len(tickets)),
            breached=len(breached[target]),
        )
    return SlaCompliance(**parts)


_SLA_ROWS = (
    "SELECT agent_id, ticket_id, target, outcome, within_target FROM sla_outcomes "
    "WHERE at_us >= ? AND at_us < ?"
)


def sla_compliance(conn: sqlite3.Connection, f: int, t: int, queue: str | None) -> SlaCompliance:
    extra, params = _queue("queue", queue)
    rows = conn.execute(f"{_SLA_ROWS}{extra} ORDER BY position", (f, t, *params))
    return _compliance([r[1:] for r in rows])


def sla_by_agent(conn: sqlite3.Connection, f: int, t: int) -> dict[str, SlaCompliance]:
    """Compliance per agent assigned at the SLA event (events with no assignee: nobody's)."""
    grouped: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for r in conn.execute(f"{_SLA_ROWS} AND agent_id IS NOT NULL ORDER BY position", (f, t)):
        grouped[r[0]].append(r[1:])
    return {agent_id: _compliance(rows) for agent_id, rows in grouped.items()}


def backlog(conn: sqlite3.Connection, t: int, queue: str | None) -> BacklogByAge:
    """Tickets active at ``to`` (counting events before it), by age since opening."""
    closed_extra, closed_params = _queue("queue", queue)
    open_extra, open_params = _queue("span_queue", queue)
    ages = [
        t - r[0]
        for r in conn.execute(
            f"SELECT opened_us FROM spans WHERE end_us >= ? AND start_us < ?{closed_extra}",
            (t, t, *closed_params),
        )
    ]
    ages += [
        t - r[0]
        for r in conn.execute(
            f"SELECT opened_us FROM tickets WHERE active = 1 AND span_start_us < ?{open_extra}",
            (t, *open_params),
        )
    ]
    counts = dict.fromkeys([name for _, name in AGE_BUCKETS] + ["over_30d"], 0)
    for age in ages:
        for days, name in AGE_BUCKETS:
            if age < days * US_PER_DAY:
                counts[name] += 1
                break
        else:
            counts["over_30d"] += 1
    return BacklogByAge(**counts, total=len(ages))


def agent_rows(
    conn: sqlite3.Connection, f: int, t: int, keys: KeyStore | None = None
) -> list[AgentReportRow]:
    handle: dict[str, dict[str, int]] = defaultdict(dict)
    reopened: dict[str, set[str]] = defaultdict(set)
    rows = conn.execute(
        "SELECT agent_id, ticket_id, resolved_us - assigned_us, "
        "reopened_us IS NOT NULL AND reopened_us < ? FROM resolutions "
        "WHERE resolved_us >= ? AND resolved_us < ? AND agent_id IS NOT NULL ORDER BY position",
        (t, f, t),
    )
    for agent_id, ticket_id, handle_us, was_reopened in rows:
        handle[agent_id][ticket_id] = handle_us  # the last resolution in the window wins
        if was_reopened:
            reopened[agent_id].add(ticket_id)
    ratings = {
        r[0]: (float(r[1]), int(r[2]))
        for r in conn.execute(
            "SELECT agent_id, avg(score), count(*) FROM ratings "
            "WHERE rated_us >= ? AND rated_us < ? AND agent_id IS NOT NULL GROUP BY agent_id",
            (f, t),
        )
    }
    sla = sla_by_agent(conn, f, t)
    names: dict[str, str | None] = {
        agent_id: open_kept(keys, "name", name)
        for agent_id, name in conn.execute("SELECT agent_id, name FROM agents")
    }
    for agent_id in (*handle, *ratings, *sla):
        names.setdefault(agent_id, None)
    out = []
    for agent_id, name in names.items():
        tickets = handle.get(agent_id, {})
        average, responses = ratings.get(agent_id, (None, 0))
        out.append(
            AgentReportRow(
                agent_id=agent_id,
                name=name,
                resolved=len(tickets),
                handle_time=duration_stats(list(tickets.values())),
                reopen_rate=_rate(len(reopened.get(agent_id, ())), len(tickets)),
                csat_average=average,
                csat_responses=responses,
                sla=sla.get(agent_id) or _compliance([]),
            )
        )
    return sorted(out, key=lambda a: (a.name is None, a.name or "", str(a.agent_id)))
