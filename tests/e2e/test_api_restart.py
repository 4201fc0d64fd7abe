"""Restart: stop the server, start it on the same data directory, everything is still there.

The module builds some history (tickets in several states, an escalation, a comment,
agents, keys), takes a snapshot over HTTP, stops the server with SIGTERM and starts a
new process on the same directory; the tests compare what the new process answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server import (
    ADMIN_KEY,
    Cast,
    ServerProcess,
    assert_problem,
    make_cast,
    read_events,
    start_server,
    ticket_body,
)

pytestmark = pytest.mark.e2e


@dataclass
class Snapshot:
    events: list[dict[str, Any]]
    tickets: dict[str, tuple[dict[str, Any], str]]  # id -> (body, ETag)
    escalation_id: str
    escalation: dict[str, Any]
    agents: list[dict[str, Any]]
    head: int


@dataclass
class Restarted:
    before: Snapshot
    first: ServerProcess
    second: ServerProcess
    cast: Cast  # the same people, talking to the second server


def build_history(cast: Cast) -> tuple[list[str], str]:
    """Tickets in several states and an acknowledged escalation."""
    assign = {"queue": cast.queue, "agent_id": cast.agent.agent_id}
    new = cast.requester.open_ticket(title="new one")
    working = cast.requester.open_ticket(title="in progress", impact="high", urgency="high")
    assert cast.lead.post(f"/tickets/{working}/assign", assign).is_success
    assert cast.agent.post(f"/tickets/{working}/accept").is_success
    assert cast.agent.post(f"/tickets/{working}/start").is_success
    assert cast.agent.post(f"/tickets/{working}/comments", {"body": "looking"}).is_success
    raised = cast.agent.post(
        f"/tickets/{working}/escalations",
        {"kind": "hierarchical", "target_type": "manager", "target": "CIO", "reason": "VIP"},
    )
    assert raised.status_code == 201, raised.text
    escalation_id: str = raised.json()["aggregate_id"]
    assert cast.lead.post(f"/escalations/{escalation_id}/acknowledge", {}).is_success
    done = cast.other_requester.open_ticket(title="resolved one")
    assert cast.lead.post(f"/tickets/{done}/assign", assign).is_success
    assert cast.agent.post(f"/tickets/{done}/start").is_success
    resolution = {"resolution_code": "fixed", "note": "done"}
    assert cast.agent.post(f"/tickets/{done}/resolve", resolution).is_success
    gone = cast.requester.open_ticket(title="cancelled one")
    assert cast.requester.post(f"/tickets/{gone}/cancel", {"reason": "never mind"}).is_success
    return [new, working, done, gone], escalation_id


def snapshot(cast: Cast, ticket_ids: list[str], escalation_id: str) -> Snapshot:
    tickets = {}
    for ticket_id in ticket_ids:
        r = cast.admin.get(f"/tickets/{ticket_id}")
        assert r.status_code == 200, r.text
        tickets[ticket_id] = (r.json(), r.headers["ETag"])
    escalation = cast.lead.get(f"/escalations/{escalation_id}")
    assert escalation.status_code == 200
    return Snapshot(
        events=read_events(cast.admin.http),
        tickets=tickets,
        escalation_id=escalation_id,
        escalation=escalation.json(),
        agents=cast.lead.get("/agents").json(),
        head=cast.admin.get("/health").json()["position"],
    )


@pytest.fixture(scope="module")
def restarted(e2e_dir: Path) -> Iterator[Restarted]:
    data, logs = e2e_dir / "data", e2e_dir / "logs"
    first = start_server(data, logs, ADMIN_KEY)
    cast = make_cast(first, ADMIN_KEY)
    ticket_ids, escalation_id = build_history(cast)
    before = snapshot(cast, ticket_ids, escalation_id)
    cast.close()

    # Stop the server and start a new process on the same data directory.
    first.stop_gracefully()
    second = start_server(data, logs, ADMIN_KEY)
    again = cast.on(second)
    yield Restarted(before, first, second, again)
    again.close()
    second.stop()


def test_first_start_recorded_the_admin_and_the_restart_prints_no_key(
    restarted: Restarted,
) -> None:
    assert "admin API key was created" in restarted.first.stdout()
    assert "admin API key was created" not in restarted.second.stdout()
    assert restarted.second.admin_key_printed() is None
    assert ADMIN_KEY not in restarted.second.stdout()


def test_event_stream_is_identical(restarted: Restarted) -> None:
    assert read_events(restarted.cast.admin.http) == restarted.before.events
    assert restarted.cast.admin.get("/health").json()["position"] == restarted.before.head


def test_tickets_are_identical_with_their_etags(restarted: Restarted) -> None:
    for ticket_id, (body, etag) in restarted.before.tickets.items():
        r = restarted.cast.admin.get(f"/tickets/{ticket_id}")
        assert r.status_code == 200, r.text
        assert r.json() == body
        assert r.headers["ETag"] == etag
    statuses = sorted(body["status"] for body, _ in restarted.before.tickets.values())
    assert statuses == ["cancelled", "in_progress", "new", "resolved"]


def test_escalation_and_agents_are_identical(restarted: Restarted) -> None:
    e = restarted.cast.lead.get(f"/escalations/{restarted.before.escalation_id}")
    assert e.json() == restarted.before.escalation
    assert restarted.cast.lead.get("/agents").json() == restarted.before.agents


def test_every_key_still_works_and_roles_still_apply(restarted: Restarted) -> None:
    cast = restarted.cast
    assert cast.admin.get("/agents").status_code == 200
    assert cast.lead.get("/agents").status_code == 200
    assert cast.auditor.get("/events", params={"limit": 1}).status_code == 200
    some_ticket = next(iter(restarted.before.tickets))
    assert cast.agent.get(f"/tickets/{some_ticket}").status_code == 200
    mine = [t for t, (b, _) in restarted.before.tickets.items() if b["title"] == "new one"]
    assert cast.requester.get(f"/tickets/{mine[0]}").status_code == 200
    assert_problem(cast.other_requester.get(f"/tickets/{mine[0]}"), 403)
    assert_problem(cast.agent.get("/agents"), 403)
    with restarted.second.client("not-a-key") as stranger:
        assert_problem(stranger.get("/agents"), 401)


def test_work_continues_where_it_stopped(restarted: Restarted) -> None:
    cast = restarted.cast
    working = next(
        t for t, (b, _) in restarted.before.tickets.items() if b["status"] == "in_progress"
    )
    before_body, before_etag = restarted.before.tickets[working]
    r = cast.agent.post(
        f"/tickets/{working}/pend",
        {"reason": "waiting on the CIO"},
        headers={"If-Match": before_etag},
    )
    assert r.status_code == 200, r.text
    assert r.json()["version"] == before_body["version"] + 1
    assert r.json()["position"] > restarted.before.head
    e = f"/escalations/{restarted.before.escalation_id}"
    assert cast.lead.post(f"{e}/resolve", {"note": "CIO approved"}).status_code == 200
    # New tickets and new keys work too; positions stay unique and ordered.
    assert cast.requester.post("/tickets", ticket_body(title="after restart")).status_code == 201
    new_key = cast.admin.post("/api-keys", {"name": "Late Larry", "role": "requester"})
    assert new_key.status_code == 201
    with restarted.second.client(new_key.json()["extra"]["api_key"]) as larry:
        assert larry.post("/tickets", json=ticket_body()).status_code == 201
    positions = [line["position"] for line in read_events(cast.admin.http)]
    assert positions == sorted(set(positions))
    assert positions[: len(restarted.before.events)] == [
        line["position"] for line in restarted.before.events
    ]


def test_sigterm_closes_the_store(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", tmp_path / "logs", ADMIN_KEY)
    with server.client(ADMIN_KEY) as admin:
        assert admin.post("/queues", json={"name": "q"}).status_code == 201
    server.stop_gracefully()
    # Closing the last SQLite connection checkpoints the WAL and removes the file.
    assert not (tmp_path / "data" / "events.sqlite-wal").exists()
