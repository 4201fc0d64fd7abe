"""Every ticket command in every status, through the Desk on the in-memory store:
allowed ones record and move the status, refused ones name the status and record nothing."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import pytest
from givens import DeskWorld, desk_world

from engine.app.results import CommandResult
from engine.domain import ticket as tk
from engine.domain.base import InvalidTransitionError
from engine.domain.commands.base import Command
from engine.domain.commands.tickets import (
    Accept,
    Assign,
    Cancel,
    Close,
    Comment,
    Escalate,
    Link,
    Merge,
    Pend,
    Rate,
    Release,
    Reopen,
    Resolve,
    Resume,
    Start,
    Triage,
)
from engine.domain.priority import Level

STATUSES = ("new", "assigned", "in_progress", "pending", "resolved", "closed", "cancelled")


def reach(w: DeskWorld, status: str) -> UUID:
    """A ticket of Rita's in ``status``, taken there the way a desk would."""
    t = w.open()
    if status == "cancelled":
        w.desk.send(w.rita, Cancel(ticket_id=t, reason="sent twice"))
    if status in ("assigned", "in_progress", "pending", "resolved", "closed"):
        w.desk.send(w.lead, Assign(ticket_id=t, agent_id=w.ann.agent_id))
    if status in ("in_progress", "pending", "resolved", "closed"):
        w.desk.send(w.ann, Start(ticket_id=t))
    if status == "pending":
        w.desk.send(w.ann, Pend(ticket_id=t, reason="awaiting logs", waiting_on="customer"))
    if status in ("resolved", "closed"):
        w.desk.send(w.ann, Resolve(ticket_id=t, resolution_code="fixed", note="new VPN profile"))
    if status == "closed":
        w.desk.send(w.lead, Close(ticket_id=t))
    assert w.status(t) == status
    return t


Run = Callable[[DeskWorld, UUID, UUID], CommandResult]


def _assign(w: DeskWorld, t: UUID, other: UUID) -> CommandResult:
    current = w.desk.queries.ticket(w.lead, t).assignee_id
    if current is None:
        return w.desk.send(w.lead, Assign(ticket_id=t, agent_id=w.ann.agent_id))
    return w.desk.send(w.lead, Assign(ticket_id=t, agent_id=w.bo.agent_id, reason="Bo knows VPNs"))


# Each command as the lead would send it (rating is the requester's).
def by_lead(w: DeskWorld, command: Command) -> CommandResult:
    return w.desk.send(w.lead, command)


COMMANDS: dict[str, Run] = {
    "triage": lambda w, t, o: by_lead(
        w, Triage(ticket_id=t, impact=Level.HIGH, urgency=Level.HIGH)
    ),
    "comment": lambda w, t, o: by_lead(w, Comment(ticket_id=t, body="Any news?")),
    "assign": _assign,
    "accept": lambda w, t, o: by_lead(w, Accept(ticket_id=t)),
    "release": lambda w, t, o: by_lead(w, Release(ticket_id=t, reason="wrong team")),
    "start": lambda w, t, o: by_lead(w, Start(ticket_id=t)),
    "pend": lambda w, t, o: by_lead(
        w, Pend(ticket_id=t, reason="awaiting logs", waiting_on="vendor")
    ),
    "resume": lambda w, t, o: by_lead(w, Resume(ticket_id=t)),
    "resolve": lambda w, t, o: by_lead(
        w, Resolve(ticket_id=t, resolution_code="fixed", note="new VPN profile")
    ),
    "reopen": lambda w, t, o: by_lead(w, Reopen(ticket_id=t, reason="drops again")),
    "close": lambda w, t, o: by_lead(w, Close(ticket_id=t)),
    "cancel": lambda w, t, o: by_lead(w, Cancel(ticket_id=t, reason="sent twice")),
    "link": lambda w, t, o: by_lead(
        w, Link(ticket_id=t, other_ticket_id=o, relation=tk.Relation.RELATED.value)
    ),
    "merge": lambda w, t, o: by_lead(w, Merge(ticket_id=t, into_ticket_id=o, reason="same outage")),
    "rate": lambda w, t, o: w.desk.send(w.rita, Rate(ticket_id=t, score=5, comment="quick")),
    "escalate": lambda w, t, o: by_lead(
        w,
        Escalate(
            ticket_id=t,
            kind="functional",
            target_type="queue",
            target="network",
            reason="needs network",
        ),
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
    details = w.desk.queries.ticket(w.admin, t)
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
