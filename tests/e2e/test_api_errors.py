"""Every error code of the API over HTTP, each as application/problem+json.

401 missing or bad key, 403 forbidden role, 404 unknown ids, 409 illegal transitions
(naming what is allowed) and version conflicts, 412 If-Match, 422 validation naming
the field, 413 oversized and 415 non-JSON bodies, deep JSON and unicode edge cases:
bad input anywhere gets a clear 4xx, never a 500, and records nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from typing import Any

import httpx
import pytest

from tests.e2e.server import (
    Actor,
    Cast,
    ServerProcess,
    assert_not_5xx,
    assert_problem,
    at_once,
    read_events,
    register_agent,
    ticket_body,
)

pytestmark = pytest.mark.e2e

UNKNOWN = "00000000-0000-4000-8000-000000000000"


def head(server: ServerProcess) -> int:
    """The log's head position: unchanged when a refused command recorded nothing."""
    with server.client() as anonymous:
        position: int = anonymous.get("/health").json()["position"]
        return position


@pytest.fixture
def ticket(cast: Cast) -> str:
    """A new ticket opened by the requester."""
    return cast.requester.open_ticket()


@pytest.fixture
def assigned(cast: Cast) -> str:
    """A ticket of the queue, assigned to ``cast.agent``."""
    ticket_id = cast.requester.open_ticket()
    r = cast.lead.post(
        f"/tickets/{ticket_id}/assign", {"queue": cast.queue, "agent_id": cast.agent.agent_id}
    )
    assert r.status_code == 200, r.text
    return ticket_id


@pytest.fixture
def escalation(cast: Cast) -> str:
    ticket_id = cast.requester.open_ticket()
    r = cast.agent.post(
        f"/tickets/{ticket_id}/escalations",
        {"kind": "functional", "target_type": "vendor", "target": "Acme", "reason": "broken"},
    )
    assert r.status_code == 201, r.text
    escalation_id: str = r.json()["aggregate_id"]
    return escalation_id


# --- 401 -------------------------------------------------------------------------

PROTECTED: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", f"/tickets/{UNKNOWN}", None),
    ("POST", "/tickets", ticket_body()),
    ("POST", f"/tickets/{UNKNOWN}/triage", {"impact": "low", "urgency": "low"}),
    ("POST", f"/tickets/{UNKNOWN}/accept", None),
    ("GET", f"/escalations/{UNKNOWN}", None),
    ("POST", f"/escalations/{UNKNOWN}/acknowledge", {}),
    ("POST", "/queues", {"name": "nope"}),
    ("POST", "/agents", {"name": "nope"}),
    ("GET", "/agents", None),
    ("POST", "/api-keys", {"name": "nope", "role": "admin"}),
    ("GET", "/events", None),
]


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer not-a-real-key",
        "Basic YWRtaW46YWRtaW4=",
        "Bearer",
        "tk_raw_key_without_scheme",
    ],
    ids=["missing", "unknown-key", "basic-scheme", "bearer-without-key", "no-scheme"],
)
def test_missing_or_bad_key_is_401(server: ServerProcess, authorization: str | None) -> None:
    before = head(server)
    headers = {"Authorization": authorization} if authorization else {}
    with server.client() as anonymous:
        for method, path, body in PROTECTED:
            r = anonymous.request(method, path, json=body, headers=headers)
            assert_problem(r, 401)
            assert r.headers["WWW-Authenticate"].startswith("Bearer"), (method, path)
    assert head(server) == before


def test_401_comes_before_body_validation(server: ServerProcess) -> None:
    with server.client("wrong-key") as stranger:
        assert_problem(stranger.post("/tickets", json={"title": 5, "actor": "x"}), 401)


def test_bearer_scheme_is_case_insensitive(server: ServerProcess, cast: Cast) -> None:
    with server.client() as c:
        r = c.get("/agents", headers={"Authorization": f"bearer {cast.lead.key}"})
    assert r.status_code == 200, r.text


# --- 403 -------------------------------------------------------------------------


def test_forbidden_roles_are_403_and_record_nothing(
    server: ServerProcess, cast: Cast, assigned: str, escalation: str
) -> None:
    mine = cast.requester.open_ticket()
    before = head(server)
    refused: list[tuple[Actor, str, str, dict[str, Any] | None]] = [
        # Requesters do not triage, assign or start work.
        (cast.requester, "POST", f"/tickets/{mine}/triage", {"impact": "high", "urgency": "high"}),
        (cast.requester, "POST", f"/tickets/{mine}/assign", {"queue": cast.queue}),
        (cast.requester, "POST", f"/tickets/{mine}/comments", {"body": "x", "internal": True}),
        # Requesters see and touch only their own tickets.
        (cast.other_requester, "GET", f"/tickets/{mine}", None),
        (cast.other_requester, "POST", f"/tickets/{mine}/comments", {"body": "me too"}),
        (cast.other_requester, "POST", f"/tickets/{mine}/cancel", {"reason": "not mine"}),
        (cast.other_requester, "GET", f"/escalations/{escalation}", None),
        # Agents do not manage the directory nor override priority.
        (cast.agent, "POST", "/queues", {"name": "agents-own-queue"}),
        (cast.agent, "POST", "/agents", {"name": "Friend"}),
        (cast.agent, "POST", "/api-keys", {"name": "Friend", "role": "admin"}),
        (cast.agent, "GET", "/agents", None),
        (cast.agent, "GET", "/events", None),
        (
            cast.agent,
            "POST",
            f"/tickets/{mine}/triage",
            {"impact": "low", "urgency": "low", "priority": "P1", "reason": "I say so"},
        ),
        # An agent works only the tickets assigned to them.
        (cast.agent2, "POST", f"/tickets/{assigned}/start", None),
        (cast.agent2, "POST", f"/tickets/{assigned}/accept", None),
        (cast.agent2, "POST", f"/tickets/{assigned}/assign", {"agent_id": cast.agent.agent_id}),
        # Leads close but do not read the raw event stream; auditors only read.
        (cast.lead, "GET", "/events", None),
        (cast.auditor, "POST", f"/tickets/{mine}/comments", {"body": "audit note"}),
        (cast.auditor, "POST", "/tickets", ticket_body()),
        (cast.requester, "GET", "/events", None),
        (cast.requester, "POST", f"/escalations/{escalation}/acknowledge", {}),
        (cast.admin, "POST", f"/tickets/{assigned}/start", None),
    ]
    for actor, method, path, body in refused:
        r = actor.http.request(method, path, json=body)
        problem = assert_problem(r, 403)
        assert problem["detail"], (actor.name, method, path)
    assert head(server) == before
    # The owner can read the ticket the others could not.
    assert cast.requester.get(f"/tickets/{mine}").status_code == 200


def test_requester_cannot_open_a_ticket_for_someone_else(cast: Cast) -> None:
    ticket_id = cast.requester.open_ticket(requester_id=cast.other_requester.principal_id)
    shown = cast.requester.get(f"/tickets/{ticket_id}").json()
    assert shown["requester_id"] == cast.requester.principal_id
    assert_problem(cast.other_requester.get(f"/tickets/{ticket_id}"), 403)


# --- 404 -------------------------------------------------------------------------


def test_unknown_ids_are_404(server: ServerProcess, cast: Cast, ticket: str) -> None:
    before = head(server)
    lead, admin = cast.lead, cast.admin
    missing: list[tuple[Actor, str, str, dict[str, Any] | None, str]] = [
        (lead, "GET", f"/tickets/{UNKNOWN}", None, UNKNOWN),
        (lead, "POST", f"/tickets/{UNKNOWN}/triage", {"impact": "low", "urgency": "low"}, UNKNOWN),
        (lead, "POST", f"/tickets/{UNKNOWN}/comments", {"body": "hello?"}, UNKNOWN),
        (lead, "POST", f"/tickets/{UNKNOWN}/cancel", {"reason": "x"}, UNKNOWN),
        (lead, "GET", f"/escalations/{UNKNOWN}", None, UNKNOWN),
        (lead, "POST", f"/escalations/{UNKNOWN}/acknowledge", {}, UNKNOWN),
        (lead, "POST", f"/escalations/{UNKNOWN}/resolve", {"note": "x"}, UNKNOWN),
        (lead, "POST", f"/escalations/{UNKNOWN}/withdraw", {"reason": "x"}, UNKNOWN),
        (lead, "POST", f"/tickets/{ticket}/assign", {"queue": "no-such-queue"}, "no-such-queue"),
        (admin, "POST", "/tickets", ticket_body(queue="no-such-queue"), "no-such-queue"),
        (admin, "POST", "/agents", {"name": "X", "queues": ["no-such-queue"]}, "no-such-queue"),
        (
            lead,
            "POST",
            f"/tickets/{ticket}/escalations",
            {
                "kind": "functional",
                "target_type": "queue",
                "target": "no-such-queue",
                "reason": "r",
            },
            "no-such-queue",
        ),
        (
            lead,
            "POST",
            f"/tickets/{ticket}/assign",
            {"queue": cast.queue, "agent_id": UNKNOWN},
            UNKNOWN,
        ),
        (admin, "POST", f"/agents/{UNKNOWN}", {"capacity": 3}, UNKNOWN),
        (
            lead,
            "POST",
            f"/tickets/{ticket}/links",
            {"ticket_id": UNKNOWN, "relation": "related"},
            UNKNOWN,
        ),
        (lead, "POST", f"/tickets/{ticket}/merge", {"into_ticket_id": UNKNOWN}, UNKNOWN),
    ]
    for actor, method, path, body, named in missing:
        r = actor.http.request(method, path, json=body)
        assert_problem(r, 404, detail=named)
    assert head(server) == before


def test_unknown_routes_and_methods_are_problems(server: ServerProcess, cast: Cast) -> None:
    assert_problem(cast.admin.get("/no/such/route"), 404)
    assert_problem(cast.admin.get("/schemas/NoSuchEvent"), 404)
    assert_problem(cast.admin.http.delete(f"/tickets/{UNKNOWN}"), 405)
    assert_problem(cast.admin.http.put("/tickets", json={}), 405)


# --- 409 -------------------------------------------------------------------------


def test_illegal_transition_is_409_naming_the_allowed_actions(
    server: ServerProcess, cast: Cast, ticket: str
) -> None:
    before = head(server)
    shown = cast.lead.get(f"/tickets/{ticket}").json()
    for action, body in [("start", None), ("resume", {}), ("reopen", {"reason": "x"})]:
        r = cast.lead.post(f"/tickets/{ticket}/{action}", body)
        problem = assert_problem(r, 409, detail=action)
        assert problem["state"] == "new"
        assert problem["allowed"] == shown["allowed_actions"]
        assert "assign" in problem["allowed"] and "start" not in problem["allowed"]
    r = cast.requester.post(f"/tickets/{ticket}/satisfaction", {"score": 3})
    assert assert_problem(r, 409)["allowed"] == shown["allowed_actions"]
    assert head(server) == before


def test_illegal_transition_on_closed_escalation_is_409(cast: Cast, escalation: str) -> None:
    e = f"/escalations/{escalation}"
    assert cast.agent.post(f"{e}/withdraw", {"reason": "no longer needed"}).status_code == 200
    problem = assert_problem(cast.agent.post(f"{e}/acknowledge", {}), 409)
    assert (problem["state"], problem["allowed"]) == ("withdrawn", [])


def test_business_rules_are_409_and_a_lead_may_override_capacity(
    server: ServerProcess, cast: Cast
) -> None:
    busy = register_agent(server, cast.admin, "Busy Bee", "agent", [cast.queue], capacity=1)
    first, second = cast.requester.open_ticket(), cast.requester.open_ticket()
    assign = {"queue": cast.queue, "agent_id": busy.agent_id}
    assert cast.lead.post(f"/tickets/{first}/assign", assign).status_code == 200
    before = head(server)
    assert_problem(cast.lead.post(f"/tickets/{second}/assign", assign), 409, detail="capacity")
    # An agent may not override capacity; a lead may, with a reason.
    override = {**assign, "override_capacity_reason": "urgent"}
    assert_problem(busy.post(f"/tickets/{second}/assign", override), 403)
    assert head(server) == before
    assert cast.lead.post(f"/tickets/{second}/assign", override).status_code == 200
    # Reassigning needs a reason; an override of priority needs a reason too.
    again = {"agent_id": cast.agent.agent_id}
    assert_problem(cast.lead.post(f"/tickets/{second}/assign", again), 409, detail="reason")
    triage = {"impact": "low", "urgency": "low", "priority": "P1"}
    assert_problem(cast.lead.post(f"/tickets/{second}/triage", triage), 409, detail="reason")
    busy.http.close()


ROUNDS = 15


def test_concurrent_commands_conflict_or_serialize(server: ServerProcess, cast: Cast) -> None:
    ticket_id = cast.requester.open_ticket()
    start = cast.lead.get(f"/tickets/{ticket_id}").json()["version"]
    clients = [server.client(cast.lead.key) for _ in range(2)]
    for c in clients:  # connect before the race
        assert c.get("/health").status_code == 200
    url = f"/tickets/{ticket_id}/comments"
    responses: list[httpx.Response] = []
    for n in range(ROUNDS):
        responses += at_once(
            [
                partial(c.post, url, json={"body": f"round {n} client {i}"})
                for i, c in enumerate(clients)
            ]
        )
    for c in clients:
        c.close()
    assert len(responses) == 2 * ROUNDS
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 409}, statuses
    for r in responses:
        if r.status_code == 409:
            assert_problem(r, 409)
    succeeded = [r for r in responses if r.status_code == 200]
    # Every success is one new version, no version was handed out twice.
    final = cast.lead.get(f"/tickets/{ticket_id}").json()
    assert final["version"] == start + len(succeeded)
    assert sorted(r.json()["version"] for r in succeeded) == list(
        range(start + 1, final["version"] + 1)
    )
    comments = [
        line
        for line in read_events(cast.admin.http)
        if line["event"]["aggregate_id"] == ticket_id and line["event"]["type"] == "TicketCommented"
    ]
    assert len(comments) == len(succeeded)


# --- 412 -------------------------------------------------------------------------


def test_if_match_mismatch_is_412_and_the_right_etag_succeeds(
    server: ServerProcess, cast: Cast, ticket: str
) -> None:
    url = f"/tickets/{ticket}/comments"
    current = cast.lead.get(f"/tickets/{ticket}").headers["ETag"]
    before = head(server)
    for stale in ('"1.0"', '"99.0"', "garbage", current.strip('"')):
        r = cast.lead.post(url, {"body": "conditional"}, headers={"If-Match": stale})
        assert_problem(r, 412, detail=current)
    assert head(server) == before
    ok = cast.lead.post(url, {"body": "conditional"}, headers={"If-Match": current})
    assert ok.status_code == 200, ok.text
    assert ok.headers["ETag"] != current
    # The old ETag is now stale; the new one and "*" succeed.
    assert_problem(cast.lead.post(url, {"body": "again"}, headers={"If-Match": current}), 412)
    newer = cast.lead.post(url, {"body": "again"}, headers={"If-Match": ok.headers["ETag"]})
    assert newer.status_code == 200, newer.text
    assert cast.lead.post(url, {"body": "any"}, headers={"If-Match": "*"}).status_code == 200


def test_if_match_on_an_escalation(cast: Cast, escalation: str) -> None:
    e = f"/escalations/{escalation}"
    version = cast.agent.get(e).json()["version"]
    assert_problem(cast.agent.post(f"{e}/acknowledge", {}, headers={"If-Match": '"7"'}), 412)
    r = cast.agent.post(f"{e}/acknowledge", {}, headers={"If-Match": f'"{version}"'})
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == f'"{version + 1}"'


# --- 422 -------------------------------------------------------------------------


def test_validation_errors_are_422_naming_the_field(
    server: ServerProcess, cast: Cast, ticket: str
) -> None:
    before = head(server)
    t = f"/tickets/{ticket}"
    bad: list[tuple[Actor, str, dict[str, Any] | list[Any] | str, str]] = [
        (
            cast.requester,
            "/tickets",
            {k: v for k, v in ticket_body().items() if k != "title"},
            "title",
        ),
        (cast.requester, "/tickets", ticket_body(impact="huge"), "impact"),
        (cast.requester, "/tickets", ticket_body(channel="carrier-pigeon"), "channel"),
        (cast.requester, "/tickets", ticket_body(actor="admin"), "actor"),
        (cast.requester, "/tickets", ticket_body(title="   "), "title"),
        (cast.requester, "/tickets", ticket_body(title="x" * 201), "title"),
        (
            cast.requester,
            "/tickets",
            ticket_body(requester_email="not-an-email"),
            "requester_email",
        ),
        (cast.requester, "/tickets", ["not", "an", "object"], "body"),
        (cast.lead, f"{t}/triage", {"impact": "high", "urgency": "sometime"}, "urgency"),
        (
            cast.lead,
            f"{t}/triage",
            {"impact": "high", "urgency": "high", "priority": "P0"},
            "priority",
        ),
        (cast.lead, f"{t}/assign", {"queue": cast.queue, "agent_id": "not-a-uuid"}, "agent_id"),
        (cast.lead, f"{t}/comments", {"body": "x", "actor": cast.requester.principal_id}, "actor"),
        (cast.lead, f"{t}/pend", {"reason": "x", "waiting_on": "godot"}, "waiting_on"),
        (cast.lead, f"{t}/cancel", {}, "reason"),
        (cast.lead, f"{t}/links", {"ticket_id": UNKNOWN, "relation": "cousin"}, "relation"),
        (cast.requester, f"{t}/satisfaction", {"score": 6}, "score"),
        (cast.requester, f"{t}/satisfaction", {"score": "five"}, "score"),
        (
            cast.lead,
            f"{t}/escalations",
            {"kind": "sideways", "target_type": "vendor", "target": "x", "reason": "r"},
            "kind",
        ),
        (cast.admin, "/queues", {"name": "a/b"}, "name"),
        (cast.admin, "/agents", {"name": "X", "role": "admin"}, "role"),
        (cast.admin, "/agents", {"name": "X", "capacity": 0}, "capacity"),
        (cast.admin, "/api-keys", {"name": "X", "role": "agent"}, "role"),
    ]
    for actor, path, body, field in bad:
        r = actor.post(path, body)
        assert_problem(r, 422, field=field)
    assert head(server) == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/tickets/not-a-uuid"),
        ("POST", "/tickets/not-a-uuid/triage"),
        ("GET", "/escalations/1234"),
        ("POST", "/escalations/1234/acknowledge"),
        ("POST", "/agents/zzz"),
        ("GET", f"/tickets/{UNKNOWN}x"),
    ],
)
def test_bad_uuid_in_path_is_422(cast: Cast, method: str, path: str) -> None:
    r = cast.admin.http.request(method, path, json={} if method == "POST" else None)
    problem = assert_problem(r, 422)
    assert any(e["field"].startswith("path.") for e in problem["errors"]), problem


def test_bad_query_parameters_are_422(cast: Cast, ticket: str) -> None:
    t = f"/tickets/{ticket}"
    assert_problem(cast.lead.get(t, params={"version": 0}), 422, field="query.version")
    assert_problem(cast.lead.get(t, params={"version": "two"}), 422, field="query.version")
    assert_problem(cast.lead.get(t, params={"as_of": "yesterday"}), 422, field="query.as_of")
    assert_problem(cast.admin.get("/events", params={"after": -1}), 422, field="query.after")
    assert_problem(cast.admin.get("/events", params={"limit": 0}), 422, field="query.limit")


def test_bad_headers_are_422(cast: Cast, ticket: str) -> None:
    url = f"/tickets/{ticket}/comments"
    long_key = {"Idempotency-Key": "k" * 201}
    assert_problem(cast.lead.post(url, {"body": "x"}, headers=long_key), 422)
    assert_problem(cast.lead.post(url, {"body": "x"}, headers={"If-Match": "x" * 101}), 422)


def test_malformed_json_is_a_4xx_problem(server: ServerProcess, cast: Cast) -> None:
    before = head(server)
    json_headers = {"Content-Type": "application/json"}
    for raw in (b"{", b'{"title": }', b"\xff\xfe{}", b"nul\x00l", b'{"title": 1e99999}'):
        r = cast.requester.http.post("/tickets", content=raw, headers=json_headers)
        assert 400 <= r.status_code < 500, (raw, r.status_code)
        assert_problem(r, r.status_code)
    assert head(server) == before


# --- 413, 415 and deep JSON --------------------------------------------------------


def test_oversized_body_is_413(server: ServerProcess, cast: Cast) -> None:
    before = head(server)
    huge = ticket_body(description="x" * 70_000)
    assert_problem(cast.requester.post("/tickets", huge), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the guard counts as it reads
        yield b'{"title": "x", "description": "'
        for _ in range(100):
            yield b"y" * 1000
        yield b'"}'

    r = cast.requester.http.post(
        "/tickets", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert_problem(r, 413)
    assert head(server) == before


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
    ],
)
def test_non_json_body_is_415(server: ServerProcess, cast: Cast, content_type: str) -> None:
    before = head(server)
    body = json.dumps(ticket_body()).encode()
    r = cast.requester.http.post("/tickets", content=body, headers={"Content-Type": content_type})
    assert_problem(r, 415)
    assert head(server) == before


def test_json_content_type_variants_are_accepted(cast: Cast) -> None:
    body = json.dumps(ticket_body()).encode()
    for ctype in ("application/json; charset=utf-8", "APPLICATION/JSON"):
        r = cast.requester.http.post("/tickets", content=body, headers={"Content-Type": ctype})
        assert r.status_code == 201, (ctype, r.text)


@pytest.mark.parametrize("depth", [33, 1000, 30_000])
def test_deeply_nested_json_is_422(server: ServerProcess, cast: Cast, depth: int) -> None:
    before = head(server)
    nested = "[" * depth + "]" * depth
    raw = f'{{"title": "deep", "description": {nested}}}'.encode()
    r = cast.requester.http.post(
        "/tickets", content=raw, headers={"Content-Type": "application/json"}
    )
    assert_problem(r, 422, field="body")
    assert head(server) == before


def test_nesting_within_the_limit_reaches_validation(cast: Cast) -> None:
    nested = "[" * 20 + "]" * 20
    raw = json.dumps(ticket_body()).replace('"web"', nested).encode()
    r = cast.requester.http.post(
        "/tickets", content=raw, headers={"Content-Type": "application/json"}
    )
    assert_problem(r, 422, field="channel")


# --- unicode -----------------------------------------------------------------------

UNICODE_TITLES = {
    "emoji": "Drucker 🖨️ brennt 🔥👩🏽‍💻",
    "rtl": "שלום עולם مرحبا بالعالم",
    "rtl-override": "invoice \u202egnp.exe",
    "combining": "Ame\u0301lie Zalgo z\u0337\u0321a\u0336lg\u0335o",
    "zero-width": "zero\u200bwidth\u200djoiner\ufeff",
    "cjk": "打印机坏了 プリンター 프린터",
    "astral": "𝕋𝕚𝕔𝕜𝕖𝕥 𐍈",
    "nul": "before\u0000after",
    "controls": "bell\u0007 escape\u001b[31m red",
    "noncharacter": "end\uffff",
    "max-length-4-byte": "😀" * 200,
}


@pytest.mark.parametrize("name", list(UNICODE_TITLES))
def test_unicode_is_kept_or_refused_never_a_500(cast: Cast, name: str) -> None:
    title = UNICODE_TITLES[name]
    r = cast.requester.post("/tickets", ticket_body(title=title, description=title))
    assert_not_5xx(r)
    if r.status_code == 201:
        shown = cast.requester.get(f"/tickets/{r.json()['aggregate_id']}")
        assert shown.status_code == 200, shown.text
        assert shown.json()["title"] == title.strip()
        assert shown.json()["description"] == title.strip()


@pytest.mark.parametrize(
    "escaped",
    [r"\ud800", r"\udfff", r"lone \ud83d high", r"\ude00 lone low", r"\udc00\ud800 swapped"],
)
def test_lone_surrogates_are_refused_or_kept_never_a_500(
    server: ServerProcess, cast: Cast, escaped: str
) -> None:
    raw = json.dumps(ticket_body(title="@@"), ensure_ascii=True).replace("@@", escaped).encode()
    r = cast.requester.http.post(
        "/tickets", content=raw, headers={"Content-Type": "application/json"}
    )
    assert_not_5xx(r)
    if r.status_code == 201:
        assert cast.requester.get(f"/tickets/{r.json()['aggregate_id']}").status_code == 200


def test_escaped_surrogate_pair_is_the_character(cast: Cast) -> None:
    raw = json.dumps(ticket_body(title="@@")).replace("@@", r"pair \ud83d\ude00").encode()
    r = cast.requester.http.post(
        "/tickets", content=raw, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 201, r.text
    shown = cast.requester.get(f"/tickets/{r.json()['aggregate_id']}").json()
    assert shown["title"] == "pair 😀"


def test_unicode_in_headers_and_queue_names_is_never_a_500(cast: Cast, ticket: str) -> None:
    url = f"/tickets/{ticket}/comments"
    latin1 = "schlüssel-é".encode("latin-1")
    assert_not_5xx(cast.lead.post(url, {"body": "x"}, headers={"Idempotency-Key": latin1}))
    assert_not_5xx(cast.lead.post(url, {"body": "x"}, headers={"If-Match": latin1}))
    with httpx.Client(base_url=str(cast.lead.http.base_url)) as c:
        bad_key = {b"Authorization": "Bearer ké".encode("latin-1")}
        assert_problem(c.get(f"/tickets/{ticket}", headers=bad_key), 401)
    assert_not_5xx(cast.admin.post("/queues", {"name": "Warteschlange Ü 队列"}))


def test_event_stream_stays_valid_json_lines_after_odd_input(cast: Cast) -> None:
    events = read_events(cast.admin.http)  # json.loads of every line
    titles = [
        line["event"]["data"].get("title")
        for line in events
        if line["event"]["type"] == "TicketOpened"
    ]
    assert titles


# --- known bugs -----------------------------------------------------------------------


def test_version_beyond_the_head_is_404(cast: Cast, ticket: str) -> None:
    assert_problem(cast.requester.get(f"/tickets/{ticket}", params={"version": 999}), 404)


def test_huge_version_is_a_4xx_problem(cast: Cast, ticket: str) -> None:
    r = cast.requester.get(f"/tickets/{ticket}", params={"version": 2**63})
    assert_not_5xx(r)


def test_huge_after_is_a_4xx_problem(cast: Cast) -> None:
    assert_not_5xx(cast.admin.get("/events", params={"after": 2**63}))


def test_commands_with_only_optional_fields_accept_no_body(cast: Cast, assigned: str) -> None:
    t = f"/tickets/{assigned}"
    assert cast.agent.post(f"{t}/release").status_code == 200
    assert cast.agent.post(f"{t}/assign", {"agent_id": cast.agent.agent_id}).status_code == 200
    assert cast.agent.post(f"{t}/start").status_code == 200
    assert cast.agent.post(f"{t}/pend", {"reason": "waiting"}).status_code == 200
    assert cast.agent.post(f"{t}/resume").status_code == 200
