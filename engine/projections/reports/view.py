"""The reports view: per-ticket facts and the dated rows the lead's reports count.

- ``tickets``: when a ticket opened, its first queue, first response, first
  escalation, current queue and agent (with when that assignment began), the agent who
  last resolved it, and its current *active span* (see below).
- ``resolutions``: one row per TicketResolved, with the queue and agent at that moment,
  and when (if ever) the ticket was reopened after it.
- ``ratings``: one row per SatisfactionRated, attributed to the last resolver.
- ``spans``: the closed stretches of time during which a ticket was active (not
  resolved, closed or cancelled) in one queue. A ticket's open stretch stays on its
  ``tickets`` row until it ends. Backlog as of any past moment counts the stretches
  that cover it.
- ``sla_outcomes``: one row per SLA target outcome: ``FirstResponseMet`` and ``SlaMet``
  (met, on time or not) and ``SlaBreached``, with the queue and agent at that moment.

docs/metrics.md defines every metric computed from these tables.
"""

from __future__ import annotations

from collections.abc import Mapping

from engine.integrity.personal import ERASED
from engine.projections.kit.cache import Row, RowCache
from engine.projections.kit.projection import Handler, ViewProjection, agent_key
from engine.projections.kit.records import EventRecord
from engine.projections.kit.store import ViewSchema

TICKET_COLUMNS = (
    "ticket_id", "seq", "opened_us", "first_queue", "queue", "agent_id", "assigned_us", "lifecycle",
    "active", "resolver_id", "first_response_us", "first_response_queue", "escalated_us",
    "last_resolution", "span_id", "span_start_us", "span_queue",
)  # fmt: skip
RESOLUTION_COLUMNS = (
    "position", "ticket_id", "queue", "agent_id", "opened_us", "assigned_us", "resolved_us",
    "reopened_us",
)  # fmt: skip
RATING_COLUMNS = ("position", "ticket_id", "queue", "agent_id", "score", "rated_us")
SPAN_COLUMNS = ("span_id", "ticket_id", "queue", "opened_us", "start_us", "end_us")
SLA_COLUMNS = (
    "position", "ticket_id", "target", "outcome", "within_target", "queue", "agent_id", "at_us",
)  # fmt: skip
SLA_OUTCOMES = {
    "FirstResponseMet": ("first_response", "met"),
    "SlaMet": ("resolution", "met"),
    "SlaBreached": (None, "breached"),  # the target is in the event
}

SCHEMA = ViewSchema(
    name="reports",
    version=3,  # 3: agents' names kept sealed
    tables=(
        """CREATE TABLE tickets (
            seq INTEGER PRIMARY KEY, ticket_id TEXT NOT NULL, opened_us INTEGER,
            first_queue TEXT, queue TEXT,
            agent_id TEXT, assigned_us INTEGER, lifecycle TEXT, active INTEGER NOT NULL,
            resolver_id TEXT, first_response_us INTEGER, first_response_queue TEXT,
            escalated_us INTEGER, last_resolution INTEGER, span_id INTEGER,
            span_start_us INTEGER, span_queue TEXT)""",
        """CREATE TABLE resolutions (
            position INTEGER PRIMARY KEY, ticket_id TEXT NOT NULL, queue TEXT, agent_id TEXT,
            opened_us INTEGER, assigned_us INTEGER, resolved_us INTEGER NOT NULL,
            reopened_us INTEGER)""",
        """CREATE TABLE ratings (
            position INTEGER PRIMARY KEY, ticket_id TEXT NOT NULL, queue TEXT, agent_id TEXT,
            score INTEGER NOT NULL, rated_us INTEGER NOT NULL)""",
        """CREATE TABLE spans (
            span_id INTEGER PRIMARY KEY, ticket_id TEXT NOT NULL, queue TEXT,
            opened_us INTEGER, start_us INTEGER NOT NULL, end_us INTEGER NOT NULL)""",
        """CREATE TABLE sla_outcomes (
            position INTEGER PRIMARY KEY, ticket_id TEXT NOT NULL, target TEXT NOT NULL,
            outcome TEXT NOT NULL, within_target INTEGER, queue TEXT, agent_id TEXT,
            at_us INTEGER NOT NULL)""",
        "CREATE TABLE agents (agent_id TEXT PRIMARY KEY, name TEXT) WITHOUT ROWID",
    ),
    indexes=(
        "CREATE UNIQUE INDEX ix_tickets_id ON tickets (ticket_id)",
        "CREATE INDEX ix_tickets_opened ON tickets (opened_us)",
        "CREATE INDEX ix_tickets_first_response ON tickets (first_response_us)",
        "CREATE INDEX ix_tickets_span ON tickets (active, span_start_us)",
        "CREATE INDEX ix_resolutions_time ON resolutions (resolved_us)",
        "CREATE INDEX ix_ratings_time ON ratings (rated_us)",
        "CREATE INDEX ix_spans_end ON spans (end_us, start_us)",
        "CREATE INDEX ix_sla_outcomes_time ON sla_outcomes (at_us)",
    ),
)


def _blank(ticket_id: str, seq: int) -> Row:
    """A new row; ``seq`` (its rowid) is the position of the event that made it."""
    row = dict.fromkeys(TICKET_COLUMNS)
    row["ticket_id"], row["seq"], row["active"] = ticket_id, seq, 0
    return row


class ReportProjection(ViewProjection):
    name = "reports"
    schema = SCHEMA

    def setup(self) -> Mapping[str, Handler]:
        self.tickets = RowCache(
            "tickets", "ticket_id", TICKET_COLUMNS, max_rows=self.cache_rows, rowid="seq"
        )
        self.resolutions = RowCache("resolutions", "position", RESOLUTION_COLUMNS, retain=False)
        self.ratings = RowCache("ratings", "position", RATING_COLUMNS, retain=False)
        self.spans = RowCache("spans", "span_id", SPAN_COLUMNS, retain=False)
        self.sla_outcomes = RowCache("sla_outcomes", "position", SLA_COLUMNS, retain=False)
        self.agents = RowCache("agents", "agent_id", ("agent_id", "name"), max_rows=self.cache_rows)
        self.caches = (
            self.tickets, self.resolutions, self.ratings, self.spans, self.sla_outcomes,
            self.agents,
        )  # fmt: skip
        self._erasures = 0
        if self.view.created:
            self.tickets.track_all_keys()
            self.agents.track_all_keys()
        return {
            "TicketOpened": self._opened,
            "TicketCommented": self._commented,
            "TicketWorkStarted": self._lifecycle("in_progress", responds=True),
            "TicketPended": self._lifecycle("pending"),
            "TicketResumed": self._lifecycle("in_progress"),
            "TicketResolved": self._resolved,
            "TicketReopened": self._reopened,
            "TicketClosed": self._lifecycle("closed"),
            "TicketCancelled": self._lifecycle("cancelled"),
            "TicketMerged": self._lifecycle("closed"),
            "SatisfactionRated": self._rated,
            "TicketEscalated": self._escalated,
            "EscalationRaised": self._escalated,
            "AssignedToQueue": self._routed,
            "AssignedToAgent": self._assigned,
            "Reassigned": self._assigned,
            "AssignmentReleased": self._released,
            "AgentRegistered": self._agent,
            "SubjectErased": self._subject_erased,
            **dict.fromkeys(SLA_OUTCOMES, self._sla_outcome),
        }

    # --- helpers ------------------------------------------------------------------

    def _row(self, ticket_id: str, r: EventRecord) -> Row:
        row = self.tickets.edit(self.cur, ticket_id)
        if row is None:
            row = self.tickets.add(self.cur, _blank(ticket_id, r["position"]))
        return row

    def _start_span(self, row: Row, r: EventRecord) -> None:
        row["active"], row["span_id"], row["span_start_us"], row["span_queue"] = (
            1, r["position"], r["at"], row["queue"],
        )  # fmt: skip

    def _end_span(self, row: Row, r: EventRecord) -> None:
        self.spans.insert(
            {
                "span_id": row["span_id"],
                "ticket_id": row["ticket_id"],
                "queue": row["span_queue"],
                "opened_us": row["opened_us"],
                "start_us": row["span_start_us"],
                "end_us": r["at"],
            }
        )
        row["active"] = 0
        row["span_id"] = row["span_start_us"] = row["span_queue"] = None

    def _first_response(self, row: Row, r: EventRecord) -> None:
        if row["first_response_us"] is None:
            row["first_response_us"], row["first_response_queue"] = r["at"], row["queue"]

    # --- ticket events --------------------------------------------------------------

    def _opened(self, r: EventRecord) -> None:
        row = self._row(r["aggregate_id"], r)
        row["opened_us"], row["lifecycle"] = r["at"], "new"
        self._start_span(row, r)

    def _commented(self, r: EventRecord) -> None:
        if r["data"]["visibility"] == "public" and r["data"]["author_role"] != "requester":
            self._first_response(self._row(r["aggregate_id"], r), r)

    def _lifecycle(self, lifecycle: str, responds: bool = False) -> Handler:
        def handle(r: EventRecord) -> None:
            row = self._row(r["aggregate_id"], r)
            if responds:
                self._first_response(row, r)
            row["lifecycle"] = lifecycle
            if lifecycle not in ("new", "in_progress", "pending") and row["active"]:
                self._end_span(row, r)

        return handle

    def _resolved(self, r: EventRecord) -> None:
        row = self._row(r["aggregate_id"], r)
        self._first_response(row, r)
        self.resolutions.insert(
            {
                "position": r["position"],
                "ticket_id": r["aggregate_id"],
                "queue": row["queue"],
                "agent_id": row["agent_id"],
                "opened_us": row["opened_us"],
                "assigned_us": row["assigned_us"],
                "resolved_us": r["at"],
                "reopened_us": None,
            }
        )
        row["last_resolution"], row["resolver_id"], row["lifecycle"] = (
            r["position"], row["agent_id"], "resolved",
        )  # fmt: skip
        if row["active"]:
            self._end_span(row, r)

    def _reopened(self, r: EventRecord) -> None:
        row = self._row(r["aggregate_id"], r)
        if row["last_resolution"] is not None:
            resolution = self.resolutions.edit(self.cur, row["last_resolution"])
            if resolution is not None and resolution["reopened_us"] is None:
                resolution["reopened_us"] = r["at"]
        row["lifecycle"] = "new"
        if not row["active"]:
            self._start_span(row, r)

    def _rated(self, r: EventRecord) -> None:
        row = self._row(r["aggregate_id"], r)
        self.ratings.insert(
            {
                "position": r["position"],
                "ticket_id": r["aggregate_id"],
                "queue": row["queue"],
                "agent_id": row["resolver_id"],
                "score": r["data"]["score"],
                "rated_us": r["at"],
            }
        )

    def _escalated(self, r: EventRecord) -> None:
        ticket_id = (
            r["aggregate_id"] if r["aggregate_type"] == "Ticket" else str(r["data"]["ticket_id"])
        )
        row = self._row(ticket_id, r)
        if row["escalated_us"] is None or r["at"] < row["escalated_us"]:
            row["escalated_us"] = r["at"]

    def _sla_outcome(self, r: EventRecord) -> None:
        d = r["data"]
        target, outcome = SLA_OUTCOMES[r["type"]]
        ticket_id = str(d["ticket_id"])
        row = self._row(ticket_id, r)
        within = d.get("within_target")
        self.sla_outcomes.insert(
            {
                "position": r["position"],
                "ticket_id": ticket_id,
                "target": target or d["target"],
                "outcome": outcome,
                "within_target": None if within is None else int(bool(within)),
                "queue": row["queue"],
                "agent_id": row["agent_id"],
                "at_us": r["at"],
            }
        )

    # --- assignment events ----------------------------------------------------------

    def _route(self, r: EventRecord) -> Row:
        row = self._row(str(r["data"]["ticket_id"]), r)
        queue = r["data"]["queue"]
        if row["first_queue"] is None:
            row["first_queue"] = queue
        if queue != row["queue"]:
            row["queue"] = queue
            if row["active"]:
                if row["span_start_us"] == r["at"]:  # nothing happened in the old queue
                    row["span_queue"] = queue
                else:
                    self._end_span(row, r)
                    self._start_span(row, r)
        return row

    def _routed(self, r: EventRecord) -> None:
        self._route(r)

    def _assigned(self, r: EventRecord) -> None:
        row = self._route(r)
        row["agent_id"], row["assigned_us"] = str(r["data"]["agent_id"]), r["at"]

    def _released(self, r: EventRecord) -> None:
        row = self._row(str(r["data"]["ticket_id"]), r)
        row["agent_id"] = row["assigned_us"] = None

    def _agent(self, r: EventRecord) -> None:
        name = self.kept(r["data"]["name"])
        self.agents.add(self.cur, {"agent_id": r["aggregate_id"], "name": name})

    def _subject_erased(self, r: EventRecord) -> None:
        """An erased agent's name reads as erased here too (see the queue view)."""
        agent = agent_key(r["data"]["subject_id"])
        row = self.agents.edit(self.cur, agent) if agent is not None else None
        if row is not None:
            row["name"] = ERASED
            self._erasures += 1

    def committed(self) -> None:
        if self._erasures:
            self._erasures = 0
            self.view.scrub()  # no copy of the old name stays in the write-ahead log
