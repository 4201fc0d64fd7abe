"""The actor on every recorded event is the authenticated principal, never the body.

Commands are sent one after another by different people; each command's response
names its position in the log, so the events between the previous position and this
one are the command's, and GET /events (as admin) must show that person as their actor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.e2e.server import Actor, Cast, ServerProcess, assert_problem, read_events, ticket_body

RITA = "0a0a0a0a-0000-4000-8000-00000000a117"  # a requester with no key yet, by id

pytestmark = pytest.mark.e2e


@dataclass
class Sent:
    actor: Actor
    what: str
    after: int  # the log's head before the command
    position: int  # the command's position


class Ledger:
    """Who sent which command, and where its events landed in the log."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.sent: list[Sent] = []

    def head(self) -> int:
        with self.server.client() as anonymous:
            position: int = anonymous.get("/health").json()["position"]
            return position

    def send(
        self, actor: Actor, what: str, call: Callable[[Actor], httpx.Response]
    ) -> dict[str, Any]:
        before = self.head()
        r = call(actor)
        assert r.is_success, (what, r.text)
        body: dict[str, Any] = r.json()
        assert body["position"] > before, what
        self.sent.append(Sent(actor, what, before, body["position"]))
        return body


def test_every_event_is_recorded_with_the_principal_as_actor(
    server: ServerProcess, cast: Cast
) -> None:
    ledger = Ledger(server)
    setup_head = ledger.head()
    spoof = {"X-Actor": "admin", "X-User": "admin", "X-Forwarded-User": "admin"}

    def post(path: str, body: Any = None, **headers: str) -> Callable[[Actor], httpx.Response]:
        return lambda actor: actor.post(path, body, headers={**spoof, **headers})

    # A requester files for someone else: the ticket is theirs, and so is the event.
    opened = ledger.send(
        cast.requester,
        "open",
        post("/tickets", ticket_body(requester_id=cast.other_requester.principal_id)),
    )
    t = f"/tickets/{opened['aggregate_id']}"
    # An agent files on a requester's behalf: the requester is the data, the agent the actor.
    on_behalf = ledger.send(
        cast.agent, "open-for", post("/tickets", ticket_body(requester_id=RITA))
    )
    triage = {"impact": "high", "urgency": "high", "priority": "P2", "reason": "workaround"}
    ledger.send(cast.lead, "triage", post(f"{t}/triage", triage))
    ledger.send(
        cast.lead,
        "assign",
        post(f"{t}/assign", {"queue": cast.queue, "agent_id": cast.agent.agent_id}),
    )
    ledger.send(cast.agent, "accept", post(f"{t}/accept"))
    ledger.send(cast.agent, "start", post(f"{t}/start"))
    ledger.send(cast.requester, "comment", post(f"{t}/comments", {"body": "thanks"}))
    ledger.send(
        cast.agent,
        "comment-idempotent",
        post(f"{t}/comments", {"body": "internal", "internal": True}, **{"Idempotency-Key": "a1"}),
    )
    raised = ledger.send(
        cast.agent,
        "escalate",
        post(
            f"{t}/escalations",
            {"kind": "functional", "target_type": "vendor", "target": "Acme", "reason": "r"},
        ),
    )
    ledger.send(
        cast.lead, "acknowledge", post(f"/escalations/{raised['aggregate_id']}/acknowledge", {})
    )
    ledger.send(
        cast.admin,
        "withdraw",
        post(f"/escalations/{raised['aggregate_id']}/withdraw", {"reason": "solved"}),
    )
    ledger.send(
        cast.agent, "resolve", post(f"{t}/resolve", {"resolution_code": "ok", "note": "done"})
    )
    ledger.send(cast.requester, "rate", post(f"{t}/satisfaction", {"score": 2}))
    ledger.send(cast.admin, "close", post(f"{t}/close", {}))
    ledger.send(cast.admin, "queue", post("/queues", {"name": "actors"}))
    agent = ledger.send(cast.admin, "agent", post("/agents", {"name": "Newbie"}))
    ledger.send(cast.admin, "update", post(f"/agents/{agent['aggregate_id']}", {"capacity": 2}))
    ledger.send(cast.admin, "key", post("/api-keys", {"name": "Nia", "role": "requester"}))

    # Trying to name the actor in the body is refused and records nothing.
    before = ledger.head()
    smuggled = cast.requester.post(f"{t}/comments", {"body": "hi", "actor": "admin"})
    assert_problem(smuggled, 422, field="actor")
    assert ledger.head() == before

    events = {line["position"]: line["event"] for line in read_events(cast.admin.http)}
    claimed: set[int] = set()
    for sent in ledger.sent:
        mine = [p for p in events if sent.after < p <= sent.position]
        assert mine, sent.what
        claimed.update(mine)
        for p in mine:
            assert events[p]["actor"] == sent.actor.principal_id, (sent.what, events[p])
        # One command: one correlation id for all its events.
        assert len({events[p]["correlation_id"] for p in mine}) == 1, sent.what
    assert len(claimed) == sum(1 for p in events if p > setup_head)

    # Before the script: the bootstrap (by the system) and the cast, made by the admin.
    for p, event in events.items():
        if p <= setup_head:
            assert event["actor"] in ("system", "admin"), event
    assert events[1]["actor"] == "system"

    # The data says who the ticket is for; the envelope says who acted.
    by_type = {
        e["type"]: e for e in events.values() if e["aggregate_id"] == on_behalf["aggregate_id"]
    }
    assert by_type["TicketOpened"]["actor"] == cast.agent.principal_id
    assert by_type["TicketOpened"]["data"]["requester_id"] == RITA
    first_opened = next(
        e
        for e in events.values()
        if e["type"] == "TicketOpened" and e["aggregate_id"] == opened["aggregate_id"]
    )
    assert first_opened["actor"] == cast.requester.principal_id
    assert first_opened["data"]["requester_id"] == cast.requester.principal_id


def test_actors_are_known_principals(cast: Cast) -> None:
    principals = {a.principal_id for a in cast.everyone()} | {"system"}
    with_agents = principals | {f"agent:{a['id']}" for a in cast.admin.get("/agents").json()}
    for line in read_events(cast.admin.http):
        assert line["event"]["actor"] in with_agents, line["event"]
