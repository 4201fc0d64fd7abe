"""Every ticket command in every status, through the Desk on the in-memory store:
allowed ones record and move the status, refused ones name the status and record nothing."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID, uuid4

import pytest
from givens import DeskWorld, desk_world

from engine.app.results import CommandResult
from engine.domain import ticket as tk
from engine.domain.base import InvalidTransitionError
from engine.domain.priority import Level

STATUSES = ("new", "assigned", "in_progress", "pending", "resolved", "closed", "cancelled")


def reach(w: DeskWorld, status: str) -> UUID:
    """A ticket of Rita's in ``status``, taken there the way a desk would."""
    t = w.open()
    if status == "cancelled":
        w.desk.cancel(w.rita, t, "sent twice")
    if status in ("assigned", "in_progress", "pending", "resolved", "closed"):
        w.desk.assign(w.lead, t, None, w.ann.agent_id, None, None)
    if status in ("in_progress", "pending", "resolved", "closed"):
        w.desk.start(w.ann, t)
    if status == "pending":
        w.desk.pend(w.ann, t, "awaiting logs", "customer")
    if status in ("resolved", "closed"):
        w.desk.resolve(w.ann, t, "fixed", "new VPN profile")
    if status == "closed":
        w.desk.close(w.lead, t, None)
    assert w.status(t) == status
    return t


Run = Callable[[DeskWorld, UUID, UUID], CommandResult]


def _assign(w: DeskWorld, t: UUID, other: UUID) -> CommandResult:
    current = w.desk.details(w.lead, t).assignee_id
    if current is None:
        return w.desk.assign(w.lead, t, None, w.ann.agent_id, None, None)
    return w.desk.assign(w.lead, t, None, w.bo.agent_id, "Bo knows VPNs", None)


# Each command as the lead would send it (rating is the requester's).
COMMANDS: dict[str, Run] = {
    "triage": lambda w, t, o: w.desk.triage(w.lead, t, Level.HIGH, Level.HIGH, None, None),
    "comment": lambda w, t, o: w.desk.comment(w.lead, t, uuid4(), "Any news?", False),
    "assign": _assign,
    "accept": lambda w, t, o: w.desk.accept(w.lead, t),
    "release": lambda w, t, o: w.desk.release(w.lead, t, "wrong team"),
    "start": lambda w, t, o: w.desk.start(w.lead, t),
    "pend": lambda w, t, o: w.desk.pend(w.lead, t, "awaiting logs", "vendor"),
    "resume": lambda w, t, o: w.desk.resume(w.lead, t, None),
    "resolve": lambda w, t, o: w.desk.resolve(w.lead, t, "fixed", "new VPN profile"),
    "reopen": lambda w, t, o: w.desk.reopen(w.lead, t, "drops again"),
    "close": lambda w, t, o: w.desk.close(w.lead, t, None),
    "cancel": lambda w, t, o: w.desk.cancel(w.lead, t, "sent twice"),
    "link": lambda w, t, o: w.desk.link(w.lead, t, o, tk.Relation.RELATED),
    "merge": lambda w, t, o: w.desk.merge(w.lead, t, o, "same outage"),
    "rate": lambda w, t, o: w.desk.rate(w.rita, t, 5, "quick"),
    "escalate": lambda w, t, o: w.desk.escalate(
        w.lead, t, uuid4(), "functional", "queue", "network", "needs network", None
    ),
}
LEADS_TO = {
    "start": "in_progress",
    "pend": "pending",
    "resume": "in_progress",
    "resolve": "resolved",
    "reopen": "assigned",  # back to its agent
    "close": "closed",
    "cancel": "cancelled",
    "merge": "closed",
    "release": "new",
}


def leads_to(status: str, action: str) -> str:
    if action == "assign" and status == "new":
        return "assigned"
    return LEADS_TO.get(action, status)


def test_every_action_of_the_table_is_covered() -> None:
    assert set().union(*tk.ALLOWED.values()) == set(COMMANDS)
    assert set(tk.ALLOWED) == set(STATUSES)


CASES = [(s, a) for s in STATUSES for a in sorted(COMMANDS)]


@pytest.mark.parametrize(("status", "action"), [c for c in CASES if c[1] in tk.ALLOWED[c[0]]])
def test_an_allowed_command_is_recorded_and_moves_the_status(status: str, action: str) -> None:
    w = desk_world()
    t, other = reach(w, status), w.open(w.sam)
    head = w.head()

    result = COMMANDS[action](w, t, other)

    # Check the command was recorded, up to the position it returned.
    assert result.position == w.head() > head
    assert not result.replayed
    assert w.status(t) == leads_to(status, action)
    details = w.desk.details(w.admin, t)
    if result.aggregate_id == t:
        assert (result.version, result.etag) == (details.version, details.etag)
    # The status's actions, less "accept" once the assignment is accepted.
    expected = tk.ALLOWED[details.status] - ({"accept"} if details.assignment_accepted else set())
    assert sorted(details.allowed_actions) == sorted(expected)


@pytest.mark.parametrize(
    ("status", "action"),
    [(s, a) for s, a in CASES if a not in tk.ALLOWED[s]],
)
def test_a_refused_command_names_the_status_and_records_nothing(status: str, action: str) -> None:
    w = desk_world()
    t, other = reach(w, status), w.open(w.sam)
    head = w.head()

    with pytest.raises(InvalidTransitionError) as refused:
        COMMANDS[action](w, t, other)

    assert (refused.value.state, refused.value.action) == (status, action)
    assert refused.value.allowed == sorted(tk.ALLOWED[status])
    assert w.head() == head
    assert w.status(t) == status
