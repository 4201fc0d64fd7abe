"""The audit trail's fold: each aggregate's fields as flat JSON-ready data, so every
event can be shown with the fields it changed (from, to).

The fold runs when a history or an export is read, over the ticket's stored events,
not when the view is written: the stored facts never change, and how changes are
shown can improve without rebuilding anything.

The fields and their rules mirror the domain's ``evolve`` functions (ticket,
assignment, escalation); a test folds random histories both ways and compares. The
derived public ``status`` (``assigned`` = a new ticket with an agent) is reported as
a change too, on whichever event changes it, so the ticket keeps a hidden mirror of
its assignee (``_assignee``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine.projections.kit.records import EventRecord

State = dict[str, Any]
Change = tuple[str, Any, Any]
Updates = Callable[[State, EventRecord], dict[str, Any]]

TICKET_DEFAULTS: State = {
    "lifecycle": None, "priority": None, "priority_override_reason": None,
    "first_response_at": None, "resolved_at": None, "closed_at": None, "resolution_code": None,
    "resolution_note": None, "pending_reason": None, "waiting_on": None, "reopen_count": 0,
    "csat_score": None, "csat_comment": None, "links": [], "merged_into": None,
    "cancel_reason": None, "open_escalations": [], "escalation_level": 0,
    "comment_count": 0, "_assignee": None,
}  # fmt: skip
ASSIGNMENT_DEFAULTS: State = {"queue": None, "agent_id": None, "accepted": False}
REASON_FIELDS = ("reason", "note", "override_reason", "capacity_override_reason")


def public_status(ticket: Mapping[str, Any] | None) -> str | None:
    if ticket is None:
        return None
    lifecycle: str = ticket["lifecycle"]
    return "assigned" if lifecycle == "new" and ticket["_assignee"] else lifecycle


def reason(r: EventRecord) -> str | None:
    for name in REASON_FIELDS:
        value = r["data"].get(name)
        if value:
            return str(value)
    return None


def _fields(*names: str, **renamed: str) -> Updates:
    """Updates copying data fields, some under another name (``state=data`` pairs)."""

    def updates(s: State, r: EventRecord) -> dict[str, Any]:
        out = {name: r["data"].get(name) for name in names}
        out.update({field: r["data"].get(key) for field, key in renamed.items()})
        return out

    return updates


def _first_response(s: State, r: EventRecord) -> str:
    value: str = s["first_response_at"] or r["occurred_at"]
    return value


def _commented(s: State, r: EventRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"comment_count": s["comment_count"] + 1}
    if r["data"]["visibility"] == "public" and r["data"]["author_role"] != "requester":
        out["first_response_at"] = _first_response(s, r)
    return out


def _resolved(s: State, r: EventRecord) -> dict[str, Any]:
    return {
        "lifecycle": "resolved",
        "resolved_at": r["occurred_at"],
        "resolution_code": r["data"]["resolution_code"],
        "resolution_note": r["data"]["note"],
        "pending_reason": None,
        "waiting_on": None,
        "first_response_at": _first_response(s, r),
    }


def _reopened(s: State, r: EventRecord) -> dict[str, Any]:
    return {
        "lifecycle": "new",
        "reopen_count": s["reopen_count"] + 1,
        "resolved_at": None,
        "resolution_code": None,
        "resolution_note": None,
    }


def _escalated(s: State, r: EventRecord) -> dict[str, Any]:
    opened = [*s["open_escalations"], [r["data"]["escalation_id"], r["data"]["level"]]]
    return {"open_escalations": opened, "escalation_level": r["data"]["escalation_level"]}


def _escalation_closed(s: State, r: EventRecord) -> dict[str, Any]:
    remaining = [e for e in s["open_escalations"] if e[0] != r["data"]["escalation_id"]]
    return {"open_escalations": remaining, "escalation_level": r["data"]["escalation_level"]}


TICKET_OPENED_FIELDS = (
    "title", "description", "requester_id", "requester_name", "requester_email",
    "channel", "category", "impact", "urgency",
)  # fmt: skip

TICKET: dict[str, Updates] = {
    "TicketOpened": lambda s, r: {"lifecycle": "new", **_fields(*TICKET_OPENED_FIELDS)(s, r)},
    "TicketTriaged": _fields(
        "impact", "urgency", "priority", priority_override_reason="override_reason"
    ),
    "TicketCommented": _commented,
    "TicketWorkStarted": lambda s, r: {
        "lifecycle": "in_progress",
        "first_response_at": _first_response(s, r),
    },
    "TicketPended": lambda s, r: {
        "lifecycle": "pending",
        "pending_reason": r["data"]["reason"],
        "waiting_on": r["data"]["waiting_on"],
    },
    "TicketResumed": lambda s, r: {
        "lifecycle": "in_progress",
        "pending_reason": None,
        "waiting_on": None,
    },
    "TicketResolved": _resolved,
    "TicketReopened": _reopened,
    "TicketClosed": lambda s, r: {"lifecycle": "closed", "closed_at": r["occurred_at"]},
    "TicketCancelled": lambda s, r: {
        "lifecycle": "cancelled",
        "closed_at": r["occurred_at"],
        "cancel_reason": r["data"]["reason"],
        "pending_reason": None,
        "waiting_on": None,
    },
    "TicketLinked": lambda s, r: {
        "links": [*s["links"], [r["data"]["relation"], r["data"]["other_ticket_id"]]]
    },
    "TicketMerged": lambda s, r: {
        "lifecycle": "closed",
        "closed_at": r["occurred_at"],
        "merged_into": r["data"]["into_ticket_id"],
        "pending_reason": None,
        "waiting_on": None,
    },
    "SatisfactionRated": _fields(csat_score="score", csat_comment="comment"),
    "TicketEscalated": _escalated,
    "TicketEscalationClosed": _escalation_closed,
}

ASSIGNMENT: dict[str, Updates] = {
    "AssignedToQueue": _fields("queue"),
    "AssignedToAgent": lambda s, r: {
        "queue": r["data"]["queue"],
        "agent_id": r["data"]["agent_id"],
        "accepted": False,
    },
    "AssignmentAccepted": lambda s, r: {"accepted": True},
    "AssignmentReleased": lambda s, r: {"agent_id": None, "accepted": False},
}
ASSIGNMENT["Reassigned"] = ASSIGNMENT["AssignedToAgent"]

ESCALATION: dict[str, Updates] = {
    "EscalationRaised": lambda s, r: {
        "status": "open",
        **_fields("kind", "target_type", "target", "reason", "level", "trigger")(s, r),
    },
    "EscalationAcknowledged": lambda s, r: {"status": "acknowledged"},
    "VendorReferenceRecorded": _fields("vendor", vendor_reference="reference"),
    "EscalationResolved": lambda s, r: {"status": "resolved", "outcome": r["data"]["note"]},
    "EscalationWithdrawn": lambda s, r: {"status": "withdrawn", "outcome": r["data"]["reason"]},
}


def apply(
    rules: Mapping[str, Updates], state: State | None, defaults: State, r: EventRecord
) -> tuple[State, list[Change]]:
    """The aggregate's new state and the fields the event changed (hidden ones left out)."""
    before = state if state is not None else defaults
    updates = rules[r["type"]](before, r)
    changes = []
    for name, value in updates.items():
        old = None if state is None else before.get(name)
        if old != value:
            changes.append((name, old, value))
    return {**before, **updates}, changes


class Timeline:
    """One ticket's aggregates (Ticket, Assignment, Escalations) folded in log order."""

    __slots__ = ("states", "ticket_id")

    def __init__(self, ticket_id: str) -> None:
        self.ticket_id = ticket_id
        self.states: dict[str, State] = {}

    def apply(self, r: EventRecord) -> list[Change]:
        """Fold one event of this ticket; returns the fields it changed."""
        states = self.states
        if r["aggregate_type"] == "Ticket":
            old = states.get(r["aggregate_id"])
            new, changes = apply(TICKET, old, TICKET_DEFAULTS, r)
            _status_change(changes, old, new)
            states[r["aggregate_id"]] = new
        elif r["aggregate_type"] == "Assignment":
            new, changes = apply(ASSIGNMENT, states.get(r["aggregate_id"]), ASSIGNMENT_DEFAULTS, r)
            states[r["aggregate_id"]] = new
            ticket = states.get(self.ticket_id)
            if ticket is not None and ticket["_assignee"] != new["agent_id"]:
                moved = {**ticket, "_assignee": new["agent_id"]}
                _status_change(changes, ticket, moved)
                states[self.ticket_id] = moved
        elif r["aggregate_type"] == "Escalation":
            new, changes = apply(ESCALATION, states.get(r["aggregate_id"]), {}, r)
            states[r["aggregate_id"]] = new
        else:
            changes = []
        return changes

    @property
    def ticket(self) -> State | None:
        return self.states.get(self.ticket_id)


def _status_change(changes: list[Change], before: State | None, after: State) -> None:
    old, new = public_status(before), public_status(after)
    if old != new:
        changes.append(("status", old, new))


def concerns(r: EventRecord) -> str | None:
    """The ticket an event concerns (Ticket, Assignment and Escalation events)."""
    if r["aggregate_type"] == "Ticket":
        return r["aggregate_id"]
    if r["aggregate_type"] in ("Assignment", "Escalation"):
        return str(r["data"]["ticket_id"])
    return None
