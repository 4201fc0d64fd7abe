"""Every route of the API answers over HTTP, and the system routes say what they should.

``test_every_route_answers`` drives each route at least once with a valid request and
then checks, against ``/openapi.json``, that no route was left out. The event stream it
leaves behind is then checked against the published JSON Schemas.
"""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

import httpx
import pytest

from tests.e2e.server import Actor, Cast, ServerProcess, assert_problem, read_events

pytestmark = pytest.mark.e2e

# Every event type of issue #2's domain, by its stable name.
DOMAIN_EVENT_TYPES = {
    "TicketOpened",
    "TicketTriaged",
    "TicketCommented",
    "TicketWorkStarted",
    "TicketPended",
    "TicketResumed",
    "TicketResolved",
    "TicketReopened",
    "TicketClosed",
    "TicketCancelled",
    "TicketLinked",
    "TicketMerged",
    "SatisfactionRated",
    "TicketEscalated",
    "TicketEscalationClosed",
    "AssignedToQueue",
    "AssignedToAgent",
    "AssignmentAccepted",
    "Reassigned",
    "AssignmentReleased",
    "EscalationRaised",
    "EscalationAcknowledged",
    "VendorReferenceRecorded",
    "EscalationResolved",
    "EscalationWithdrawn",
    "QueueCreated",
    "AgentRegistered",
    "AgentUpdated",
    "CredentialIssued",
    "SystemBootstrapped",
    "CommandProcessed",
}

# The routers of issue #2 (tickets, escalations, directory, system), by OpenAPI tag.
ISSUE_2_TAGS = {"tickets", "escalations", "directory", "system"}


class RouteLog:
    """Which (method, path) pairs the recorded clients sent."""

    def __init__(self) -> None:
        self.calls: set[tuple[str, str]] = set()

    def hook(self, request: httpx.Request) -> None:
        self.calls.add((request.method, request.url.path))

    def watch(self, actor: Actor, server: ServerProcess) -> Actor:
        watched = actor.on(server)
        watched.http.event_hooks["request"].append(self.hook)
        return watched

    def covers(self, method: str, template: str) -> bool:
        pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$")
        return any(m == method and pattern.match(p) for m, p in self.calls)


def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, (response.request.url, response.text)
    body: dict[str, Any] = response.json()
    return body


def test_every_route_answers(server: ServerProcess, cast: Cast) -> None:
    log = RouteLog()
    admin, lead, agent, requester = (
        log.watch(a, server) for a in (cast.admin, cast.lead, cast.agent, cast.requester)
    )
    auditor, anonymous = log.watch(cast.auditor, server), server.client()
    anonymous.event_hooks["request"].append(log.hook)

    # System routes, without a key.
    health = ok(anonymous.get("/health"))
    assert health["status"] == "ok" and health["store"] == "sqlite"
    assert isinstance(health["position"], int) and health["position"] > 0
    assert "TicketOpened" in ok(anonymous.get("/schemas"))
    assert ok(anonymous.get("/schemas/TicketOpened"))["title"] == "TicketOpened"
    assert anonymous.get("/openapi.json").status_code == 200
    assert anonymous.get("/docs").status_code == 200

    # Directory: a second queue, an agent in it, an update, the list, a requester key.
    ok(admin.post("/queues", {"name": "second-line"}), 201)
    registered = ok(
        admin.post("/agents", {"name": "Sam Second", "queues": ["second-line"], "capacity": 3}),
        201,
    )
    assert registered["extra"]["api_key"].startswith("tk_")
    updated = ok(
        admin.post(
            f"/agents/{registered['aggregate_id']}",
            {"queues": ["second-line", cast.queue], "capacity": 5, "reason": "cover"},
        )
    )
    assert updated["version"] == 2
    agents = {a["id"]: a for a in lead.get("/agents").json()}
    assert agents[registered["aggregate_id"]]["capacity"] == 5
    assert agents[registered["aggregate_id"]]["queues"] == sorted(["second-line", cast.queue])
    issued = ok(admin.post("/api-keys", {"name": "Quinn", "role": "requester"}), 201)
    # The holder's id is opaque and random: never made of the name (personal data).
    assert UUID(issued["extra"]["principal_id"]).version == 4
    revoked = ok(
        admin.post(f"/api-keys/{issued['aggregate_id']}/revoke", {"reason": "left the company"})
    )
    assert revoked["version"] == 2

    # Ticket A: the whole lifecycle including comments and release.
    a = requester.open_ticket()
    t = f"/tickets/{a}"
    assert ok(requester.get(t))["status"] == "new"
    ok(agent.post(f"{t}/triage", {"impact": "low", "urgency": "low"}))
    ok(requester.post(f"{t}/comments", {"body": "any news?"}))
    ok(agent.post(f"{t}/comments", {"body": "checking logs", "internal": True}))
    ok(lead.post(f"{t}/assign", {"queue": cast.queue, "agent_id": agent.agent_id}))
    ok(agent.post(f"{t}/accept"))
    ok(agent.post(f"{t}/release", {"reason": "going on leave"}))
    assert ok(requester.get(t))["status"] == "new"
    # An agent may take a ticket of their queue themselves.
    ok(agent.post(f"{t}/assign", {"agent_id": agent.agent_id}))
    ok(agent.post(f"{t}/start"))
    ok(agent.post(f"{t}/pend", {"reason": "need logs", "waiting_on": "customer"}))
    ok(agent.post(f"{t}/resume", {}))
    ok(agent.post(f"{t}/resolve", {"resolution_code": "config", "note": "reset profile"}))
    ok(requester.post(f"{t}/reopen", {"reason": "still broken"}))
    ok(agent.post(f"{t}/resolve", {"resolution_code": "config", "note": "really fixed"}))
    ok(lead.post(f"{t}/close", {}))
    ok(requester.post(f"{t}/satisfaction", {"score": 4}))
    final = ok(requester.get(t))
    assert (final["status"], final["csat_score"], final["reopen_count"]) == ("closed", 4, 1)

    # Ticket B: cancelled by its requester.
    b = requester.open_ticket(title="printer")
    ok(requester.post(f"/tickets/{b}/cancel", {"reason": "found another printer"}))
    cancelled = ok(requester.get(f"/tickets/{b}"))
    assert (cancelled["status"], cancelled["cancel_reason"]) == (
        "cancelled",
        "found another printer",
    )

    # Tickets C and D: linked, then C merged into D.
    c = requester.open_ticket(title="mail slow")
    d = requester.open_ticket(title="mail very slow")
    ok(agent.post(f"/tickets/{c}/links", {"ticket_id": d, "relation": "related"}))
    assert ok(requester.get(f"/tickets/{d}"))["links"] == [{"relation": "related", "ticket_id": c}]
    ok(agent.post(f"/tickets/{c}/merge", {"into_ticket_id": d, "reason": "same outage"}))
    merged = ok(requester.get(f"/tickets/{c}"))
    assert (merged["status"], merged["merged_into"]) == ("closed", d)
    assert {"relation": "merged_from", "ticket_id": c} in ok(requester.get(f"/tickets/{d}"))[
        "links"
    ]

    # D is routed to an agent, then reassigned (which needs a reason).
    ok(lead.post(f"/tickets/{d}/assign", {"queue": cast.queue, "agent_id": agent.agent_id}))
    ok(
        lead.post(
            f"/tickets/{d}/assign",
            {"agent_id": cast.agent2.agent_id, "reason": "Ari is at capacity"},
            headers={"Idempotency-Key": "reassign-d"},
        )
    )
    assert ok(requester.get(f"/tickets/{d}"))["assignee_id"] == cast.agent2.agent_id

    # Escalations on D: one withdrawn, one acknowledged and resolved, one to a vendor.
    def escalate(body: dict[str, Any]) -> str:
        raised = ok(agent.post(f"/tickets/{d}/escalations", {"reason": "slow", **body}), 201)
        assert raised["extra"]["ticket_id"] == d
        escalation_id: str = raised["aggregate_id"]
        return escalation_id

    e1 = escalate({"kind": "hierarchical", "target_type": "manager", "target": "IT manager"})
    ok(lead.post(f"/escalations/{e1}/withdraw", {"reason": "not needed after all"}))
    assert ok(requester.get(f"/escalations/{e1}"))["status"] == "withdrawn"
    e2 = escalate({"kind": "functional", "target_type": "queue", "target": "second-line"})
    ok(agent.post(f"/escalations/{e2}/acknowledge", {}))
    ok(agent.post(f"/escalations/{e2}/resolve", {"note": "index rebuilt"}))
    e3 = escalate({"kind": "functional", "target_type": "vendor", "target": "MailCorp", "level": 2})
    ok(
        agent.post(
            f"/escalations/{e3}/vendor-reference", {"vendor": "MailCorp", "reference": "MC-1"}
        )
    )
    assert ok(agent.get(f"/escalations/{e3}"))["vendor_reference"] == "MC-1"
    assert ok(requester.get(f"/tickets/{d}"))["escalation_level"] == 2

    # The event stream, for the admin and the auditor.
    assert admin.get("/events").status_code == 200
    assert auditor.get("/events", params={"after": 0, "limit": 5}).text.count("\n") == 5

    # Every kind of event of the domain was recorded along the way.
    recorded = {line["event"]["type"] for line in read_events(admin.http)}
    assert recorded >= DOMAIN_EVENT_TYPES

    # No route of issue #2's routers in the OpenAPI description was left out (later
    # issues' routers, e.g. integrity, have their own tests).
    paths = ok(anonymous.get("/openapi.json"))["paths"]
    routes = {
        (method.upper(), path)
        for path, operations in paths.items()
        for method, operation in operations.items()
        if set(operation.get("tags", [])) & ISSUE_2_TAGS
    }
    assert len(routes) >= 31
    missing = sorted(r for r in routes if not log.covers(*r))
    assert missing == []
    anonymous.close()
    for actor in (admin, lead, agent, requester, auditor):
        actor.http.close()


def test_health_needs_no_key_and_reports_the_head(server: ServerProcess, cast: Cast) -> None:
    with server.client() as anonymous:
        before = anonymous.get("/health").json()["position"]
        cast.requester.open_ticket()
        after = anonymous.get("/health").json()["position"]
    assert after > before


def test_schemas_list_every_event_type(server: ServerProcess) -> None:
    with server.client() as anonymous:
        schemas = anonymous.get("/schemas").json()
    assert DOMAIN_EVENT_TYPES <= set(schemas)
    for name, schema in schemas.items():
        assert schema["title"] == name
        assert schema["properties"]["type"] == {"const": name}


def test_schema_of_ticket_opened_is_a_json_schema(server: ServerProcess) -> None:
    with server.client() as anonymous:
        r = anonymous.get("/schemas/TicketOpened")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    schema = r.json()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object"
    assert {"event_id", "type", "actor", "occurred_at", "data"} <= set(schema["required"])
    data = schema["properties"]["data"]
    assert {"title", "description", "requester_id", "channel", "impact", "urgency"} <= set(
        data["properties"]
    )
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    jsonschema_rs.Draft202012Validator(schema)  # raises if it is not a valid schema


def test_unknown_schema_is_404(server: ServerProcess) -> None:
    with server.client() as anonymous:
        assert_problem(anonymous.get("/schemas/NoSuchEvent"), 404, detail="NoSuchEvent")


def schema_errors(server: ServerProcess, cast: Cast, unseal: bool) -> list[tuple[str, str]]:
    """Validate every event of GET /events against its published schema."""
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    with server.client() as anonymous:
        schemas = anonymous.get("/schemas").json()
    validators = {name: jsonschema_rs.Draft202012Validator(s) for name, s in schemas.items()}
    events = read_events(cast.admin.http)
    assert len(events) > 10
    positions = [line["position"] for line in events]
    assert positions == sorted(set(positions))
    errors = []
    for line in events:
        event = line["event"]
        if unseal:
            data = event["data"]
            for name, value in data.items():
                if isinstance(value, dict) and "$enc" in value:
                    data[name] = "(sealed personal data)"
        errors += [(event["type"], e.message) for e in validators[event["type"]].iter_errors(event)]
    return errors


def test_recorded_events_match_their_published_schemas(server: ServerProcess, cast: Cast) -> None:
    # Personal fields travel sealed ({"$enc": ...}, see the README); the rest must match.
    assert schema_errors(server, cast, unseal=True) == []


def test_sealed_personal_fields_match_their_published_schemas(
    server: ServerProcess, cast: Cast
) -> None:
    assert schema_errors(server, cast, unseal=False) == []


def test_openapi_and_docs_answer(server: ServerProcess) -> None:
    with server.client() as anonymous:
        spec = anonymous.get("/openapi.json")
        docs = anonymous.get("/docs")
    assert spec.status_code == 200
    assert spec.json()["info"]["title"] == "ticketing"
    assert "/tickets/{ticket_id}/escalations" in spec.json()["paths"]
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in docs.text
