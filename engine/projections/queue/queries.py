"""Queries on the queue view: queue summaries, queue pages, workloads, search."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from engine.integrity.keystore import KeyStore
from engine.projections.kit.models import AgentWorkload, QueueSummary, QueueTicket
from engine.projections.kit.projection import opened, query_keys
from engine.projections.kit.queries import (
    Keyset,
    ViewQueries,
    Where,
    filtered_page,
    id_text,
    page,
)
from engine.projections.kit.records import from_us, to_us
from engine.projections.queue.view import ORDER_COLUMNS

ACTIVE_STATUSES = frozenset({"new", "assigned", "in_progress", "pending"})
MAX_LIMIT = 500
WORKLOAD_LIMIT = 1000
SlaFilter = Literal["at_risk", "breached"]

_SELECT = (
    "SELECT t.ticket_id, t.title, t.requester_id, t.requester_name, t.channel, t.category, "
    "t.impact, t.urgency, t.priority, t.status, t.queue, t.assignee_id, a.name, t.accepted, "
    "t.escalation_level, t.escalated, t.sla_due_us, t.sla_breached, t.opened_us, "
    "t.updated_us, t.resolved_us, t.closed_us, t.breach_rank, t.due_key, t.priority_rank, "
    "t.sla_status, t.sla_at_risk, t.first_response_due_us, t.resolution_due_us, "
    "t.sla_policy_version, t.routing_note "
    "FROM tickets t LEFT JOIN agents a ON a.agent_id = t.assignee_id"
)
QUEUE_ORDER = Keyset("queue", tuple(f"t.{c}" for c in ORDER_COLUMNS), key=(22, 23, 24, 18, 0))
"""Queue order (see ``queue.view``); the key is where ``_SELECT`` has those columns."""
NEWEST_FIRST = Keyset("search", ("t.opened_us", "t.ticket_id"), key=(18, 0), descending=True)


def _opt_time(value: int | None) -> datetime | None:
    return None if value is None else from_us(value)


def _ticket(r: tuple[Any, ...], keys: KeyStore | None) -> QueueTicket:
    return QueueTicket(
        ticket_id=r[0], title=opened(keys, "title", r[1]), requester_id=r[2],
        requester_name=opened(keys, "requester_name", r[3]), channel=r[4],
        category=r[5], impact=r[6], urgency=r[7], priority=r[8], status=r[9], queue=r[10],
        assignee_id=r[11], assignee_name=opened(keys, "name", r[12]), accepted=bool(r[13]),
        escalation_level=r[14],
        escalated=bool(r[15]), sla_due_at=_opt_time(r[16]), sla_breached=bool(r[17]),
        opened_at=from_us(r[18]), updated_at=from_us(r[19]), resolved_at=_opt_time(r[20]),
        closed_at=_opt_time(r[21]), sla_status=r[25], sla_at_risk=bool(r[26]),
        sla_first_response_due_at=_opt_time(r[27]), sla_resolution_due_at=_opt_time(r[28]),
        sla_policy_version=r[29], routing_note=r[30],
    )  # fmt: skip


class QueueQueries(ViewQueries):
    """The queue view's queries (methods of ``Views``)."""

    def queues(self) -> list[QueueSummary]:
        return self._read("queue", _queues)

    def queue_tickets(
        self,
        queue: str,
        status: str | None = None,
        priority: str | None = None,
        assignee: UUID | str | None = None,
        unassigned: bool | None = None,
        escalated: bool | None = None,
        limit: int = 50,
        cursor: str | None = None,
        sla: SlaFilter | None = None,
    ) -> tuple[list[QueueTicket], str | None]:
        """A queue's tickets in queue order; active ones unless ``status`` names another.
        ``sla`` keeps the tickets whose recorded SLA status is that one (``at_risk``: at
        risk and not breached; ``breached``: a target not yet met was breached)."""
        where = Where("t.queue = ?", params=[queue])
        if status is None:
            where.add("t.active = 1")
        else:
            where.add("t.active = ?", 1 if status in ACTIVE_STATUSES else 0)
            where.add("t.status = ?", status)
        where.given("t.priority = ?", priority)
        where.given("t.assignee_id = ?", None if assignee is None else id_text(assignee))
        if unassigned is not None:
            where.add(f"t.assignee_id IS {'' if unassigned else 'NOT '}NULL")
        if escalated is not None:
            where.add("t.escalated = ?", 1 if escalated else 0)
        where.given("t.sla_status = ?", sla)
        keys = query_keys(self.keys)
        return self._read(
            "queue", lambda conn: _page(conn, where, QUEUE_ORDER, limit, cursor, keys)
        )

    def agent_workload(self, agent_id: UUID | str) -> AgentWorkload | None:
        agent = id_text(agent_id)
        return self._read("queue", lambda conn: _workload(conn, agent, query_keys(self.keys)))

    def search_tickets(
        self,
        requester: str | None = None,
        status: str | None = None,
        queue: str | None = None,
        priority: str | None = None,
        text: str | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[QueueTicket], str | None]:
        """Tickets newest first; ``text`` is a case-insensitive substring of the title,
        ``created_from`` inclusive and ``created_to`` exclusive."""
        where = Where("t.lifecycle IS NOT NULL")
        where.given("t.requester_id = ?", requester)
        where.given("t.status = ?", status)
        where.given("t.queue = ?", queue)
        where.given("t.priority = ?", priority)
        where.given("t.opened_us >= ?", None if created_from is None else to_us(created_from))
        where.given("t.opened_us < ?", None if created_to is None else to_us(created_to))
        keys = query_keys(self.keys)
        if not text:
            return self._read(
                "queue", lambda conn: _page(conn, where, NEWEST_FIRST, limit, cursor, keys)
            )
        # Titles are kept sealed: matched once opened, in the order's chunks.
        needle = text.casefold()

        def matches(row: tuple[Any, ...]) -> bool:
            return needle in str(opened(keys, "title", row[1])).casefold()

        def found(conn: sqlite3.Connection) -> tuple[list[QueueTicket], str | None]:
            rows, next_cursor = filtered_page(
                conn, _SELECT, where, NEWEST_FIRST, matches,
                limit=limit, maximum=MAX_LIMIT, cursor=cursor,
            )  # fmt: skip
            return [_ticket(r, keys) for r in rows], next_cursor

        return self._read("queue", found)

    def ticket(self, ticket_id: UUID | str) -> QueueTicket | None:
        key = id_text(ticket_id)
        return self._read("queue", lambda conn: _ticket_by_id(conn, key, query_keys(self.keys)))


def _page(
    conn: sqlite3.Connection,
    where: Where,
    keyset: Keyset,
    limit: int,
    cursor: str | None,
    keys: KeyStore | None,
) -> tuple[list[QueueTicket], str | None]:
    rows, next_cursor = page(
        conn, _SELECT, where, keyset, limit=limit, maximum=MAX_LIMIT, cursor=cursor
    )
    return [_ticket(r, keys) for r in rows], next_cursor


def _ticket_by_id(
    conn: sqlite3.Connection, ticket_id: str, keys: KeyStore | None
) -> QueueTicket | None:
    row = conn.execute(
        f"{_SELECT} WHERE t.ticket_id = ? AND t.lifecycle IS NOT NULL", (ticket_id,)
    ).fetchone()
    return None if row is None else _ticket(row, keys)


def _queues(conn: sqlite3.Connection) -> list[QueueSummary]:
    described = dict(conn.execute("SELECT name, description FROM queues").fetchall())
    counts: dict[str, list[tuple[Any, ...]]] = {name: [] for name in described}
    for row in conn.execute("SELECT queue, status, priority, unassigned, escalated, n FROM counts"):
        if row[0]:  # tickets not routed to any queue yet have no queue to show under
            counts.setdefault(row[0], []).append(row[1:])
    out = []
    for name in sorted(counts):
        by_status: Counter[str] = Counter()
        by_priority: Counter[str] = Counter()
        unassigned = escalated = 0
        for status, priority, is_unassigned, is_escalated, n in counts[name]:
            by_status[status] += n
            by_priority[priority or "none"] += n
            unassigned += n if is_unassigned else 0
            escalated += n if is_escalated else 0
        out.append(
            QueueSummary(
                name=name,
                description=described.get(name),
                active=sum(by_status.values()),
                by_status=dict(sorted(by_status.items())),
                by_priority=dict(sorted(by_priority.items())),
                unassigned=unassigned,
                escalated=escalated,
            )
        )
    return out


def _workload(
    conn: sqlite3.Connection, agent_id: str, keys: KeyStore | None
) -> AgentWorkload | None:
    agent = conn.execute(
        "SELECT name, capacity, agent_active, queues FROM agents WHERE agent_id = ?", (agent_id,)
    ).fetchone()
    rows = conn.execute(
        f"{_SELECT} WHERE t.assignee_id = ? AND t.active = 1 ORDER BY {QUEUE_ORDER.order} LIMIT ?",
        (agent_id, WORKLOAD_LIMIT),
    ).fetchall()
    if agent is None and not rows:
        return None
    load = conn.execute(
        "SELECT count(*) FROM tickets WHERE assignee_id = ? AND active = 1", (agent_id,)
    ).fetchone()[0]
    tickets = [_ticket(r, keys) for r in rows]
    name, capacity, active, queue_names = agent if agent is not None else (None, None, 1, "[]")
    return AgentWorkload(
        agent_id=agent_id,
        name=opened(keys, "name", name),
        capacity=capacity,
        agent_active=bool(active),
        queues=json.loads(queue_names or "[]"),
        load=load,
        by_priority=dict(sorted(Counter(t.priority or "none" for t in tickets).items())),
        tickets=tickets,
    )
