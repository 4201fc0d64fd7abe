"""The "Done when" walk of issue #2 over HTTP: a ticket from opened to rated.

Admin sets up a queue, a lead and an agent (their keys are returned once) and a
requester key; the requester opens a ticket and the desk takes it through triage,
assignment, work, pending, resolution, reopening, a vendor escalation and closure.
After every step ``GET /tickets/{id}`` shows the change and its ETag is the command's.
The recorded history then answers ``?version=N`` and ``?as_of=`` for every step.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from tests.e2e.server import (
    ADMIN_KEY,
    Actor,
    ServerProcess,
    assert_problem,
    create_queue,
    issue_key,
    register_agent,
)

pytestmark = pytest.mark.e2e

QUEUE = "l1-support"


@dataclass
class Step:
    name: str
    response: httpx.Response
    ticket: dict[str, Any]
    ticket_etag: str
    escalation: dict[str, Any] | None
    after: datetime  # a client-side moment after the step and before the next one


@dataclass
class Walk:
    ticket_id: str
    escalation_id: str
    lead: Actor
    agent: Actor
    requester: Actor
    steps: list[Step] = field(default_factory=list)

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)


@pytest.fixture(scope="module")
def walk(server: ServerProcess) -> Iterator[Walk]:
    """Run the whole walk once; the tests below read what each step did."""
    admin = Actor("admin", "admin", ADMIN_KEY, "admin", server.client(ADMIN_KEY))

    # Admin: a queue, a lead and an agent (each gets a key once), a requester key.
    create_queue(admin, QUEUE)
    lead = register_agent(server, admin, "Lena Lead", "lead", [QUEUE])
    agent = register_agent(server, admin, "Ari Agent", "agent", [QUEUE])
    requester = issue_key(server, admin, "Rita Requester", "requester")

    # The requester opens a ticket.
    opened = requester.post(
        "/tickets",
        {
            "title": "Laptop will not boot",
            "description": "Black screen after the BIOS logo since the update.",
            "category": "hardware",
            "impact": "medium",
            "urgency": "low",
            "channel": "web",
        },
    )
    assert opened.status_code == 201, opened.text
    ticket_id = opened.json()["aggregate_id"]
    w = Walk(ticket_id, "", lead, agent, requester)

    def record(name: str, response: httpx.Response, status: int = 200) -> None:
        assert response.status_code == status, (name, response.text)
        # Read by the lead, who may read every field (a requester's view leaves out the
        # desk's reasons: tests/integration/test_visibility.py).
        got = lead.get(f"/tickets/{ticket_id}")
        assert got.status_code == 200, got.text
        assert requester.get(f"/tickets/{ticket_id}").headers["ETag"] == got.headers["ETag"]
        escalation = None
        if w.escalation_id:
            e = lead.get(f"/escalations/{w.escalation_id}")
            assert e.status_code == 200, e.text
            escalation = e.json()
        w.steps.append(Step(name, response, got.json(), got.headers["ETag"], escalation, now()))

    record("open", opened, 201)
    t = f"/tickets/{ticket_id}"
    record(
        "triage",
        lead.post(
            f"{t}/triage",
            {"impact": "high", "urgency": "medium", "priority": "P1", "reason": "CEO's laptop"},
        ),
    )
    record("assign", lead.post(f"{t}/assign", {"queue": QUEUE, "agent_id": agent.agent_id}))
    record("accept", agent.post(f"{t}/accept"))
    record("start", agent.post(f"{t}/start"))
    record(
        "pend",
        agent.post(f"{t}/pend", {"reason": "waiting for the user to bring it in"}),
    )
    record("resume", agent.post(f"{t}/resume", {"note": "laptop is here"}))
    record(
        "resolve",
        agent.post(f"{t}/resolve", {"resolution_code": "fixed", "note": "rolled back BIOS"}),
    )
    record("reopen", requester.post(f"{t}/reopen", {"reason": "black screen again"}))
    escalated = agent.post(
        f"{t}/escalations",
        {
            "kind": "functional",
            "target_type": "vendor",
            "target": "Laptop Vendor Inc.",
            "reason": "hardware fault under warranty",
        },
    )
    assert escalated.status_code == 201, escalated.text
    w.escalation_id = escalated.json()["aggregate_id"]
    record("escalate", escalated, 201)
    e = f"/escalations/{w.escalation_id}"
    record("acknowledge", agent.post(f"{e}/acknowledge", {"note": "vendor notified"}))
    record(
        "vendor-reference",
        agent.post(
            f"{e}/vendor-reference", {"vendor": "Laptop Vendor Inc.", "reference": "RMA-4242"}
        ),
    )
    record(
        "resolve-escalation",
        agent.post(f"{e}/resolve", {"note": "vendor replaced the mainboard"}),
    )
    record(
        "resolve-again",
        agent.post(f"{t}/resolve", {"resolution_code": "vendor_fix", "note": "mainboard swapped"}),
    )
    record("close", lead.post(f"{t}/close", {"reason": "confirmed by the user"}))
    record(
        "satisfaction",
        requester.post(f"{t}/satisfaction", {"score": 5, "comment": "fast and friendly"}),
    )
    yield w
    for actor in (admin, lead, agent, requester):
        actor.http.close()


def now() -> datetime:
    return datetime.now(UTC)


# What GET /tickets/{id} shows after each step (a subset of its fields).
EXPECTED: dict[str, dict[str, Any]] = {
    "open": {"status": "new", "priority": "P4", "queue": None, "assignee_id": None},
    "triage": {
        "status": "new",
        "impact": "high",
        "urgency": "medium",
        "priority": "P1",
        "priority_override_reason": "CEO's laptop",
    },
    "assign": {"status": "assigned", "queue": QUEUE, "assignment_accepted": False},
    "accept": {"status": "assigned", "assignment_accepted": True},
    "start": {"status": "in_progress"},
    "pend": {
        "status": "pending",
        "pending_reason": "waiting for the user to bring it in",
        "waiting_on": "customer",
    },
    "resume": {"status": "in_progress", "pending_reason": None, "waiting_on": None},
    "resolve": {"status": "resolved", "resolution_code": "fixed"},
    "reopen": {"status": "assigned", "reopen_count": 1, "resolution_code": None},
    "escalate": {"status": "assigned", "escalation_level": 1},
    "acknowledge": {"status": "assigned", "escalation_level": 1},
    "vendor-reference": {"status": "assigned", "escalation_level": 1},
    "resolve-escalation": {"status": "assigned", "escalation_level": 0, "open_escalations": []},
    "resolve-again": {"status": "resolved", "resolution_code": "vendor_fix"},
    "close": {"status": "closed"},
    "satisfaction": {
        "status": "closed",
        "csat_score": 5,
        "csat_comment": "fast and friendly",
    },
}

ESCALATION_STEPS = ("escalate", "acknowledge", "vendor-reference", "resolve-escalation")
EXPECTED_ESCALATION: dict[str, dict[str, Any]] = {
    "escalate": {"status": "open", "level": 1, "target_type": "vendor", "kind": "functional"},
    "acknowledge": {"status": "acknowledged"},
    "vendor-reference": {"status": "acknowledged", "vendor_reference": "RMA-4242"},
    "resolve-escalation": {"status": "resolved", "outcome": "vendor replaced the mainboard"},
}


def test_every_step_shows_in_get_ticket(walk: Walk) -> None:
    assert [s.name for s in walk.steps] == list(EXPECTED)
    for step in walk.steps:
        shown = {k: step.ticket[k] for k in EXPECTED[step.name]}
        assert shown == EXPECTED[step.name], step.name
        assert step.ticket["id"] == walk.ticket_id
    assert walk.step("pend").ticket["allowed_actions"] == [
        "assign",
        "cancel",
        "comment",
        "escalate",
        "link",
        "merge",
        "resolve",
        "resume",
        "triage",
    ]
    assert walk.steps[-1].ticket["allowed_actions"] == ["rate"]


def test_every_ticket_command_etag_is_the_get_etag(walk: Walk) -> None:
    for step in walk.steps:
        body = step.response.json()
        if step.name in ESCALATION_STEPS:
            continue
        assert body["aggregate_id"] == walk.ticket_id, step.name
        assert step.response.headers["ETag"] == step.ticket_etag, step.name
        assert step.ticket["etag"] == step.ticket_etag, step.name
        assert body["version"] == step.ticket["version"], step.name
        assert body["replayed"] is False
        assert body["position"] >= 1


def test_escalation_steps_answer_with_the_escalation(walk: Walk) -> None:
    for name in ESCALATION_STEPS:
        step = walk.step(name)
        body = step.response.json()
        assert step.escalation is not None
        shown = {k: step.escalation[k] for k in EXPECTED_ESCALATION[name]}
        assert shown == EXPECTED_ESCALATION[name], name
        # The command's ETag is the escalation's version.
        assert body["aggregate_id"] == walk.escalation_id, name
        assert step.response.headers["ETag"] == f'"{step.escalation["version"]}"', name
        assert body["version"] == step.escalation["version"], name
    raised = walk.step("escalate").response.json()
    assert raised["extra"] == {"ticket_id": walk.ticket_id, "level": 1}
    assert walk.step("escalate").ticket["open_escalations"] == [walk.escalation_id]
    assert walk.step("resolve-escalation").escalation["ticket_id"] == walk.ticket_id  # type: ignore[index]


def test_ticket_version_grows_and_etag_changes_with_every_step(walk: Walk) -> None:
    versions = [s.ticket["version"] for s in walk.steps]
    assert versions == sorted(versions)
    # Acknowledging and recording a vendor reference change only the escalation.
    escalation_only = ("acknowledge", "vendor-reference")
    etags = [s.ticket_etag for s in walk.steps if s.name not in escalation_only]
    assert len(set(etags)) == len(etags), etags
    for name in escalation_only:
        assert walk.step(name).ticket_etag == walk.step("escalate").ticket_etag


def test_first_response_and_resolution_times_are_recorded(walk: Walk) -> None:
    final = walk.steps[-1].ticket
    assert final["first_response_at"] is not None
    assert final["resolved_at"] is not None
    assert final["closed_at"] is not None
    assert final["opened_at"] <= final["updated_at"]
    assert walk.step("start").ticket["first_response_at"] is not None
    assert walk.step("open").ticket["first_response_at"] is None


def test_get_at_version_shows_that_version(walk: Walk) -> None:
    # The first snapshot that shows a ticket version is that version's state (later
    # snapshots of the same version differ only by assignment-only steps).
    first_by_version: dict[int, dict[str, Any]] = {}
    for step in walk.steps:
        first_by_version.setdefault(step.ticket["version"], step.ticket)
    assert len(first_by_version) >= 10
    for version, expected in first_by_version.items():
        r = walk.lead.get(f"/tickets/{walk.ticket_id}", params={"version": version})
        assert r.status_code == 200, r.text
        assert r.json() == expected, version
        assert r.headers["ETag"] == expected["etag"]


def test_get_as_of_shows_the_state_at_that_moment(walk: Walk) -> None:
    for step in walk.steps:
        r = walk.lead.get(f"/tickets/{walk.ticket_id}", params={"as_of": step.after.isoformat()})
        assert r.status_code == 200, r.text
        assert r.json() == step.ticket, step.name
        assert r.headers["ETag"] == step.ticket_etag, step.name


def test_get_as_of_with_z_suffix_and_offset(walk: Walk) -> None:
    step = walk.step("pend")
    utc_z = step.after.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    plus_two = step.after.astimezone(timezone(timedelta(hours=2))).isoformat()
    for moment in (utc_z, plus_two):
        r = walk.requester.get(f"/tickets/{walk.ticket_id}", params={"as_of": moment})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "pending"


def test_get_as_of_before_the_ticket_existed_is_404(walk: Walk) -> None:
    opened_at = datetime.fromisoformat(walk.steps[0].ticket["opened_at"].replace("Z", "+00:00"))
    for moment in (opened_at - timedelta(microseconds=1), opened_at - timedelta(days=365)):
        r = walk.requester.get(f"/tickets/{walk.ticket_id}", params={"as_of": moment.isoformat()})
        assert_problem(r, 404, detail=walk.ticket_id)
    # At the very moment it was opened it exists.
    r = walk.requester.get(f"/tickets/{walk.ticket_id}", params={"as_of": opened_at.isoformat()})
    assert r.status_code == 200, r.text


def test_as_of_needs_a_time_zone(walk: Walk) -> None:
    naive = walk.step("open").after.replace(tzinfo=None).isoformat()
    r = walk.requester.get(f"/tickets/{walk.ticket_id}", params={"as_of": naive})
    assert_problem(r, 422, detail="as_of")


def test_agents_keys_are_shown_only_once(walk: Walk, server: ServerProcess) -> None:
    with server.client(ADMIN_KEY) as admin:
        r = admin.get("/agents")
    assert r.status_code == 200, r.text
    listed = {a["id"]: a for a in r.json()}
    assert walk.agent.agent_id in listed and walk.lead.agent_id in listed
    assert listed[walk.lead.agent_id]["role"] == "lead"
    assert listed[walk.agent.agent_id]["queues"] == [QUEUE]
    assert walk.agent.key not in r.text and walk.lead.key not in r.text
    assert "api_key" not in r.text
    # The resolved and closed ticket no longer counts against the agent's load.
    assert listed[walk.agent.agent_id]["load"] == 0


def test_get_escalation_sends_its_etag(walk: Walk) -> None:
    r = walk.agent.get(f"/escalations/{walk.escalation_id}")
    assert r.status_code == 200
    assert r.headers.get("ETag") == f'"{r.json()["version"]}"'
