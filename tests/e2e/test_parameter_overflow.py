"""Overflowing parameters over real HTTP (#15 item 2): every route's integer and time
parameters, read from the live /openapi.json, with values past int64 and past the
datetime range, answer a 4xx problem naming the field, and the server log holds no
traceback. Also the inputs the security probe found: huge search and queue cursors, and
an agent's availability and schedule addressed with a ticket's id."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.proc import Seed, Server, auth, seed, ticket_body
from tests.support.openapi import Parameter, is_instant, is_integer, parameters, request

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

INTEGERS = [10**30, -(10**30), 2**63, -(2**63) - 1]
INSTANTS = [
    "9999-12-31T23:00:00-01:00",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T00:00:00Z",  # in range, but a future as_of
    "99999-01-01T00:00:00Z",
    "0.5",
]
CURSORS = [str(10**30), str(-(10**30)), str(2**63), str(-(2**63) - 1)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("overflow") / "data").start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def world(server: Server) -> dict[str, Any]:
    people: Seed = seed(server)
    with server.client() as admin:
        ticket = admin.post("/tickets", json=ticket_body(people.queue)).json()["aggregate_id"]
        escalation = admin.post(
            f"/tickets/{ticket}/escalations",
            json={"kind": "functional", "target_type": "vendor", "target": "acme", "reason": "x"},
        ).json()["aggregate_id"]
        spec = admin.get("/openapi.json").json()
    return {
        "people": people,
        "spec": spec,
        "path": {
            "ticket_id": ticket,
            "escalation_id": escalation,
            "agent_id": people.agent_id,
            "queue": people.queue,
            "type_name": "TicketOpened",
            "name": "business-hours",
            "subject_id": "nobody",
            "credential_id": str(uuid.uuid4()),
        },
        "defaults": {"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"},
    }


def names_field(response: httpx.Response, name: str) -> bool:
    body = response.json()
    fields = [e["field"].split(".")[-1] for e in body.get("errors") or []]
    return name in fields or name in body["detail"]


def assert_4xx_problem(response: httpx.Response, label: str) -> None:
    assert 400 <= response.status_code < 500, (label, response.status_code, response.text)
    ctype = response.headers["content-type"].split(";")[0]
    assert ctype == "application/problem+json", (label, ctype)


def assert_no_traceback(server: Server) -> None:
    log = server.log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[log.index("Traceback") - 500 :][:3000]


def targets(world: dict[str, Any]) -> list[tuple[Parameter, Any]]:
    found = parameters(world["spec"])
    pairs = [(p, v) for p in found if is_integer(p) for v in INTEGERS]
    pairs += [(p, v) for p in found if is_instant(p) for v in INSTANTS]
    assert {p.name for p, _ in pairs} >= {"as_of", "version", "after", "min_position", "from"}
    return pairs


def test_overflowing_integers_and_instants_are_4xx_naming_the_field(
    server: Server, world: dict[str, Any]
) -> None:
    wrong = []
    with server.client() as admin:
        for p, value in targets(world):
            url, query, headers = request(world["spec"], p, value, world["path"], world["defaults"])
            r = admin.request(p.method.upper(), url, params=query, headers=headers)
            assert_4xx_problem(r, f"{p.label}={value}")
            if not names_field(r, p.name):
                wrong.append((p.label, value, r.text[:300]))
    assert not wrong, wrong
    assert_no_traceback(server)


@pytest.mark.parametrize("cursor", CURSORS)
def test_huge_search_and_queue_cursors_are_4xx(
    server: Server, world: dict[str, Any], cursor: str
) -> None:
    with server.client() as admin:
        for url in ["/tickets", f"/queues/{world['people'].queue}"]:
            r = admin.get(url, params={"cursor": cursor})
            assert_4xx_problem(r, url)
            assert names_field(r, "cursor"), r.text
    assert_no_traceback(server)


def test_an_agents_routes_with_a_tickets_id_are_404(server: Server, world: dict[str, Any]) -> None:
    ticket = world["path"]["ticket_id"]
    with server.client() as admin:
        answers = [
            admin.get(f"/agents/{ticket}/availability"),
            admin.post(f"/agents/{ticket}/availability", json={"status": "away"}),
            admin.post(f"/agents/{ticket}/schedule", json={"working_hours": {}}),
        ]
    for r in answers:
        assert_4xx_problem(r, r.url.path)
        assert r.status_code == 404, r.text
    assert_no_traceback(server)


def test_requesters_get_the_same_refusals(server: Server, world: dict[str, Any]) -> None:
    # A role that may not read a route still has its parameters checked first, or is
    # refused: a 4xx either way, never a traceback.
    key = world["people"].requester_key
    with httpx.Client(base_url=server.url, headers=auth(key), timeout=10) as requester:
        for p, value in targets(world):
            url, query, headers = request(world["spec"], p, value, world["path"], world["defaults"])
            r = requester.request(p.method.upper(), url, params=query, headers=headers)
            assert_4xx_problem(r, f"{p.label}={value}")
    assert_no_traceback(server)
