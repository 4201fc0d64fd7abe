"""The queue view: one row per ticket with what a queue page filters and sorts on,
counters per queue, and the agents' and queues' directory.

The queue order is the index ``ix_tickets_queue``: breached first, then SLA due time
(earliest first; tickets with no running target after those with one), then priority,
then age (oldest first), then ticket id.

The SLA columns come from each ticket's SLA clock, folded here with the domain's own
``sla.evolve`` (the clock state is kept in ``sla_clocks``) and stored as
``sla.facts(clock)``: what the log records, never judged against the wall clock, so a
rebuild gives the same rows at any time (docs/sla.md, "For views").
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engine.domain import sla
from engine.domain.base import EVENT_TYPES
from engine.integrity.personal import ERASED
from engine.projections.kit.cache import Row, RowCache
from engine.projections.kit.projection import Handler, ViewProjection, agent_key
from engine.projections.kit.records import EventRecord, to_us
from engine.projections.kit.store import ViewSchema
from engine.stores.envelope import from_envelope

ACTIVE = frozenset({"new", "in_progress", "pending"})
PRIORITY_RANK = {"P1": 1, "P2": 2, "P3": 3, "P4": 4}
UNRANKED = 9
NO_DUE = 1 << 62  # sorts after every real due time (microseconds since the epoch)

TICKET_COLUMNS = (
    "ticket_id", "seq", "title", "requester_id", "requester_name", "channel",
    "category", "impact", "urgency", "priority", "priority_rank", "lifecycle", "status",
    "active", "queue", "assignee_id", "accepted", "escalation_level", "escalated",
    "sla_due_us", "sla_breached", "breach_rank", "due_key", "opened_us", "updated_us",
    "resolved_us", "closed_us", "sla_status", "sla_at_risk", "first_response_due_us",
    "resolution_due_us", "sla_priority", "sla_policy_version", "routing_note",
)  # fmt: skip
CLOCK_COLUMNS = ("ticket_id", "clock")
SLA_EVENTS = (
    "SlaClockStarted", "SlaClockPaused", "SlaClockResumed", "FirstResponseMet", "SlaAtRisk",
    "SlaBreached", "SlaMet", "SlaClockStopped",
)  # fmt: skip
ORDER_COLUMNS = ("breach_rank", "due_key", "priority_rank", "opened_us", "ticket_id")
AGENT_COLUMNS = ("agent_id", "name", "email", "role", "capacity", "agent_active", "queues")
QUEUE_COLUMNS = ("name", "description", "created_us")
COUNT_KEY = ("queue", "status", "priority", "unassigned", "escalated")

SCHEMA = ViewSchema(
    name="queue",
    version=4,  # 4: personal fields kept sealed
    tables=(
        """CREATE TABLE tickets (
            seq INTEGER PRIMARY KEY, ticket_id TEXT NOT NULL,
            title TEXT, requester_id TEXT,
            requester_name TEXT, channel TEXT, category TEXT, impact TEXT, urgency TEXT,
            priority TEXT, priority_rank INTEGER NOT NULL, lifecycle TEXT, status TEXT,
            active INTEGER NOT NULL, queue TEXT, assignee_id TEXT, accepted INTEGER NOT NULL,
            escalation_level INTEGER NOT NULL, escalated INTEGER NOT NULL,
            sla_due_us INTEGER, sla_breached INTEGER NOT NULL,
            breach_rank INTEGER NOT NULL, due_key INTEGER NOT NULL,
            opened_us INTEGER, updated_us INTEGER, resolved_us INTEGER, closed_us INTEGER,
            sla_status TEXT, sla_at_risk INTEGER NOT NULL, first_response_due_us INTEGER,
            resolution_due_us INTEGER, sla_priority TEXT, sla_policy_version INTEGER,
            routing_note TEXT)""",
        "CREATE TABLE sla_clocks (ticket_id TEXT PRIMARY KEY, clock TEXT NOT NULL) WITHOUT ROWID",
        """CREATE TABLE counts (
            queue TEXT NOT NULL, status TEXT NOT NULL, priority TEXT NOT NULL,
            unassigned INTEGER NOT NULL, escalated INTEGER NOT NULL, n INTEGER NOT NULL,
            PRIMARY KEY (queue, status, priority, unassigned, escalated)) WITHOUT ROWID""",
        """CREATE TABLE agents (
            agent_id TEXT PRIMARY KEY, name TEXT, email TEXT, role TEXT,
            capacity INTEGER, agent_active INTEGER, queues TEXT) WITHOUT ROWID""",
        "CREATE TABLE queues (name TEXT PRIMARY KEY, description TEXT, created_us INTEGER) "
        "WITHOUT ROWID",
    ),
    indexes=(
        "CREATE UNIQUE INDEX ix_tickets_id ON tickets (ticket_id)",
        "CREATE INDEX ix_tickets_queue ON tickets "
        "(queue, active, breach_rank, due_key, priority_rank, opened_us, ticket_id)",
        "CREATE INDEX ix_tickets_assignee ON tickets "
        "(assignee_id, active, breach_rank, due_key, priority_rank, opened_us, ticket_id)",
        "CREATE INDEX ix_tickets_requester ON tickets (requester_id, opened_us, ticket_id)",
        "CREATE INDEX ix_tickets_opened ON tickets (opened_us, ticket_id)",
    ),
)


_BLANK: Row = {
    "ticket_id": None, "seq": None, "title": None, "requester_id": None,
    "requester_name": None, "channel": None, "category": None, "impact": None,
    "urgency": None, "priority": None, "priority_rank": UNRANKED, "lifecycle": None,
    "status": None, "active": 0, "queue": None, "assignee_id": None, "accepted": 0,
    "escalation_level": 0, "escalated": 0, "sla_due_us": None, "sla_breached": 0,
    "breach_rank": 1, "due_key": NO_DUE, "opened_us": None, "updated_us": None,
    "resolved_us": None, "closed_us": None, "sla_status": None, "sla_at_risk": 0,
    "first_response_due_us": None, "resolution_due_us": None, "sla_priority": None,
    "sla_policy_version": None, "routing_note": None,
}  # fmt: skip


def _blank(ticket_id: str, seq: int) -> Row:
    """A new row; ``seq`` (its rowid) is the position of the event that made it."""
    row = _BLANK.copy()
    row["ticket_id"], row["seq"] = ticket_id, seq
    return row


def _restatus(row: Row) -> None:
    """Derive the public status (``assigned`` = new with an agent) and activity."""
    lifecycle = row["lifecycle"]
    if lifecycle is None:
        row["status"], row["active"] = None, 0
        return
    row["status"] = "assigned" if lifecycle == "new" and row["assignee_id"] else lifecycle
    row["active"] = 1 if lifecycle in ACTIVE else 0


def _opt_us(value: datetime | None) -> int | None:
    return None if value is None else to_us(value)


def _apply_facts(row: Row, facts: sla.SlaFacts) -> None:
    due = _opt_us(facts.due_at)
    row.update(
        sla_status=facts.status,
        sla_breached=1 if facts.breached else 0,
        breach_rank=0 if facts.breached else 1,
        sla_due_us=due,
        due_key=NO_DUE if due is None else due,
        sla_at_risk=1 if facts.at_risk else 0,
        first_response_due_us=_opt_us(facts.first_response_due_at),
        resolution_due_us=_opt_us(facts.resolution_due_at),
        sla_priority=facts.priority.value,
        sla_policy_version=facts.policy_version,
    )


def _count_key(row: Row | None) -> tuple[Any, ...] | None:
    if row is None or not row["active"]:
        return None
    return (
        row["queue"] or "",
        row["status"],
        row["priority"] or "",
        0 if row["assignee_id"] else 1,
        row["escalated"],
    )


class QueueProjection(ViewProjection):
    name = "queue"
    schema = SCHEMA

    def setup(self) -> Mapping[str, Handler]:
        cache_rows = self.cache_rows
        self.tickets = RowCache(
            "tickets", "ticket_id", TICKET_COLUMNS, max_rows=cache_rows, rowid="seq"
        )
        self.agents = RowCache("agents", "agent_id", AGENT_COLUMNS, max_rows=cache_rows)
        self.queues = RowCache("queues", "name", QUEUE_COLUMNS, max_rows=cache_rows)
        self.clocks = RowCache("sla_clocks", "ticket_id", CLOCK_COLUMNS, max_rows=cache_rows)
        self.caches = (self.tickets, self.agents, self.queues, self.clocks)
        self._erasures = 0
        # Parsed clocks by ticket, each with the text it was stored as: a clock is
        # parsed again only when its row's text is not that very string (read back
        # from the file, after a reset or an eviction). Bounded like the row caches.
        self._parsed: dict[str, tuple[str, sla.SlaClock]] = {}
        self._max_parsed = max(1, cache_rows)
        if self.view.created:
            for cache in self.caches:
                cache.track_all_keys()
        lifecycle = self._lifecycle
        return {
            "TicketOpened": self._opened,
            "TicketTriaged": self._triaged,
            "TicketWorkStarted": lifecycle("in_progress"),
            "TicketPended": lifecycle("pending"),
            "TicketResumed": lifecycle("in_progress"),
            "TicketResolved": lifecycle("resolved", "resolved_us"),
            "TicketReopened": self._reopened,
            "TicketClosed": lifecycle("closed", "closed_us"),
            "TicketCancelled": lifecycle("cancelled", "closed_us"),
            "TicketMerged": lifecycle("closed", "closed_us"),
            "TicketCommented": self._touched,
            "TicketLinked": self._touched,
            "SatisfactionRated": self._touched,
            "TicketEscalated": self._escalation,
            "TicketEscalationClosed": self._escalation,
            "AssignedToQueue": self._routed,
            "AssignedToAgent": self._assigned,
            "Reassigned": self._assigned,
            "AssignmentAccepted": self._accepted,
            "AssignmentReleased": self._released,
            "RoutingDeferred": self._deferred,
            "QueueCreated": self._queue_created,
            "SubjectErased": self._subject_erased,
            "AgentRegistered": self._agent,
            "AgentUpdated": self._agent,
            **dict.fromkeys(SLA_EVENTS, self._sla),
        }

    # --- ticket events --------------------------------------------------------------

    def _ticket(self, r: EventRecord) -> Row:
        row = self.tickets.edit(self.cur, r["aggregate_id"])
        if row is None:
            row = self.tickets.add(self.cur, _blank(r["aggregate_id"], r["position"]))
        row["updated_us"] = r["at"]
        return row

    def _opened(self, r: EventRecord) -> None:
        d = r["data"]
        row = self._ticket(r)
        row.update(
            title=self.kept(d["title"]),
            requester_id=d["requester_id"],
            requester_name=self.kept(d.get("requester_name")),
            channel=d["channel"],
            category=d["category"],
            impact=d["impact"],
            urgency=d["urgency"],
            lifecycle="new",
            opened_us=r["at"],
        )
        _restatus(row)

    def _triaged(self, r: EventRecord) -> None:
        d = r["data"]
        row = self._ticket(r)
        row["impact"], row["urgency"], row["priority"] = d["impact"], d["urgency"], d["priority"]
        row["priority_rank"] = PRIORITY_RANK.get(d["priority"], UNRANKED)

    def _lifecycle(self, lifecycle: str, stamp: str | None = None) -> Handler:
        def handle(r: EventRecord) -> None:
            row = self._ticket(r)
            row["lifecycle"] = lifecycle
            if stamp is not None:
                row[stamp] = r["at"]
            _restatus(row)

        return handle

    def _reopened(self, r: EventRecord) -> None:
        row = self._ticket(r)
        row["lifecycle"], row["resolved_us"] = "new", None
        _restatus(row)

    def _touched(self, r: EventRecord) -> None:
        self._ticket(r)

    def _escalation(self, r: EventRecord) -> None:
        row = self._ticket(r)
        level = int(r["data"]["escalation_level"])
        row["escalation_level"], row["escalated"] = level, 1 if level > 0 else 0

    # --- assignment events (they carry the ticket id) -------------------------------

    def _assignment(self, r: EventRecord) -> Row:
        ticket_id = str(r["data"]["ticket_id"])
        row = self.tickets.edit(self.cur, ticket_id)
        if row is None:
            row = self.tickets.add(self.cur, _blank(ticket_id, r["position"]))
        return row

    def _routed(self, r: EventRecord) -> None:
        row = self._assignment(r)
        row["queue"], row["routing_note"] = r["data"]["queue"], None

    def _assigned(self, r: EventRecord) -> None:
        row = self._assignment(r)
        row["queue"], row["assignee_id"], row["accepted"], row["routing_note"] = (
            r["data"]["queue"],
            str(r["data"]["agent_id"]),
            0,
            None,
        )
        _restatus(row)

    def _deferred(self, r: EventRecord) -> None:
        """Automatic routing found nobody: the queue shows why the ticket waits."""
        self._assignment(r)["routing_note"] = r["data"]["reason"]

    def _accepted(self, r: EventRecord) -> None:
        self._assignment(r)["accepted"] = 1

    def _released(self, r: EventRecord) -> None:
        row = self._assignment(r)
        row["assignee_id"], row["accepted"] = None, 0
        _restatus(row)

    # --- SLA clock events (they carry the ticket id) ----------------------------------

    def _sla(self, r: EventRecord) -> None:
        """Fold the event into the ticket's clock with the domain's ``evolve`` and store
        the clock's recorded facts on the ticket row."""
        ticket_id = str(r["data"]["ticket_id"])
        stored = self.clocks.edit(self.cur, ticket_id)
        before = None if stored is None else self._parsed_clock(ticket_id, stored["clock"])
        # The record's data is already upcast: validate it as the current schema version.
        current = EVENT_TYPES[r["type"]].schema_version
        clock = sla.evolve(before, from_envelope({**r, "schema_version": current}))
        if clock is None:
            return  # an event before the clock started changes nothing
        if stored is None:
            stored = self.clocks.add(self.cur, {"ticket_id": ticket_id, "clock": ""})
        text = stored["clock"] = clock.model_dump_json()
        self._keep_parsed(ticket_id, text, clock)
        _apply_facts(self._assignment(r), sla.facts(clock))

    def _parsed_clock(self, ticket_id: str, text: str) -> sla.SlaClock:
        known = self._parsed.get(ticket_id)
        if known is not None and known[0] is text:
            return known[1]
        return sla.SlaClock.model_validate_json(text)

    def _keep_parsed(self, ticket_id: str, text: str, clock: sla.SlaClock) -> None:
        parsed = self._parsed
        parsed.pop(ticket_id, None)
        if len(parsed) >= self._max_parsed:
            for key in list(parsed)[: max(1, self._max_parsed // 10)]:
                del parsed[key]  # the oldest tenth (dicts keep insertion order)
        parsed[ticket_id] = (text, clock)

    def _subject_erased(self, r: EventRecord) -> None:
        """Blank the subject's personal data here too, as reading it now would."""
        subject = r["data"]["subject_id"]
        found = self.cur.execute("SELECT ticket_id FROM tickets WHERE requester_id = ?", (subject,))
        ids = {row[0] for row in found}
        ids.update(k for k, row in self.tickets.rows() if row["requester_id"] == subject)
        for ticket_id in ids:
            row = self.tickets.edit(self.cur, ticket_id)
            if row is not None and row["requester_id"] == subject:
                row["title"] = ERASED
                if row["requester_name"] is not None:
                    row["requester_name"] = ERASED
        agent = agent_key(subject)
        if agent is not None:
            found_agent = self.agents.edit(self.cur, agent)
            if found_agent is not None:
                found_agent["name"] = ERASED
                if found_agent["email"] is not None:
                    found_agent["email"] = ERASED
        self._erasures += 1

    def committed(self) -> None:
        if self._erasures:
            self._erasures = 0
            self.view.scrub()  # no copy of the old rows stays in the write-ahead log

    # --- directory ------------------------------------------------------------------

    def _queue_created(self, r: EventRecord) -> None:
        d = r["data"]
        self.queues.add(
            self.cur,
            {"name": d["name"], "description": d.get("description"), "created_us": r["at"]},
        )

    def _agent(self, r: EventRecord) -> None:
        d = r["data"]
        row = self.agents.edit(self.cur, r["aggregate_id"])
        if row is None:
            row = self.agents.add(
                self.cur, {**dict.fromkeys(AGENT_COLUMNS), "agent_id": r["aggregate_id"]}
            )
        if r["type"] == "AgentRegistered":
            row.update(
                name=self.kept(d["name"]),
                email=self.kept(d.get("email")),
                role=d["role"],
                agent_active=1,
            )
        else:
            row["agent_active"] = 1 if d["active"] else 0
        row["capacity"], row["queues"] = d["capacity"], json.dumps(list(d["queues"]))

    # --- batch end --------------------------------------------------------------------

    def flush(self, cur: sqlite3.Cursor) -> None:
        delta: Counter[tuple[Any, ...]] = Counter()
        for before, after in self.tickets.flush(cur):
            old, new = _count_key(before), _count_key(after)
            if old != new:
                if old is not None:
                    delta[old] -= 1
                if new is not None:
                    delta[new] += 1
        for cache in (self.agents, self.queues, self.clocks):
            cache.flush(cur)
        changes = [(*key, n) for key, n in delta.items() if n]
        if changes:
            cur.executemany(
                "INSERT INTO counts VALUES (?, ?, ?, ?, ?, ?) "
                f"ON CONFLICT ({', '.join(COUNT_KEY)}) DO UPDATE SET n = n + excluded.n",
                changes,
            )
            if any(n < 0 for *_, n in changes):
                cur.execute("DELETE FROM counts WHERE n = 0")

    def reset(self) -> None:
        self._erasures = 0
        self._parsed.clear()
        super().reset()
