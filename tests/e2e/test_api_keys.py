"""Revoking an API key: recorded with its reason, the key stops authenticating (within
the principal cache's lifetime), and nothing else changes."""

from __future__ import annotations

import time
import uuid

from engine.bootstrap import PRINCIPAL_TTL_S
from tests.e2e.server import Cast, ServerProcess, assert_problem, read_events


def _until_refused(server: ServerProcess, key: str, path: str = "/tickets") -> float:
    """Seconds until ``key`` is refused with 401 (bounded by the cache's lifetime)."""
    started = time.monotonic()
    client = server.client(key)
    while True:
        r = client.get(path)
        if r.status_code == 401:
            assert_problem(r, 401)
            return time.monotonic() - started
        assert r.status_code == 200, r.text
        assert time.monotonic() - started < PRINCIPAL_TTL_S + 10, "the key still works"
        time.sleep(0.1)


def test_a_revoked_requester_key_stops_working_and_the_revocation_is_audited(
    server: ServerProcess, cast: Cast
) -> None:
    issued = cast.admin.post("/api-keys", {"name": "Rita Revoked", "role": "requester"})
    assert issued.status_code == 201, issued.text
    body = issued.json()
    key, credential = body["extra"]["api_key"], body["aggregate_id"]
    assert body["extra"]["credential_id"] == credential
    assert server.client(key).get("/tickets").status_code == 200

    revoked = cast.admin.post(f"/api-keys/{credential}/revoke", {"reason": "left the company"})
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["version"] == 2
    _until_refused(server, key)

    # The log keeps the issue and the revocation, with who and why; never the key.
    events = [
        i["event"] for i in read_events(cast.admin.http) if i["event"]["aggregate_id"] == credential
    ]
    assert [e["type"] for e in events] == ["CredentialIssued", "CredentialRevoked"]
    # The reason may name the holder: it is sealed under their principal id (erasable).
    reason = events[1]["data"]["reason"]
    assert events[1]["actor"] == "admin" and reason["$enc"] == "A256GCM"
    assert reason["subject"] == body["extra"]["principal_id"]
    assert "left the company" not in str(events)
    assert key not in str(events)

    # Revoking twice is refused and records nothing.
    again = cast.admin.post(f"/api-keys/{credential}/revoke", {"reason": "again"})
    assert_problem(again, 409)


def test_an_agent_key_is_revoked_by_the_credential_id_its_registration_returned(
    server: ServerProcess, cast: Cast
) -> None:
    registered = cast.admin.post(
        "/agents", {"name": "Arno Away", "queues": [cast.queue], "capacity": 2}
    )
    assert registered.status_code == 201, registered.text
    extra = registered.json()["extra"]
    revoked = cast.admin.post(
        f"/api-keys/{extra['credential_id']}/revoke", {"reason": "laptop stolen"}
    )
    assert revoked.status_code == 200, revoked.text
    _until_refused(server, extra["api_key"], "/queues")
    # The agent stays in the directory: only the key stopped working.
    agents = {a["id"] for a in cast.admin.get("/agents").json()}
    assert registered.json()["aggregate_id"] in agents


def test_only_an_admin_revokes_and_bad_requests_say_why(server: ServerProcess, cast: Cast) -> None:
    issued = cast.admin.post("/api-keys", {"name": "Kept Kim", "role": "requester"}).json()
    credential = issued["aggregate_id"]
    for who in (cast.lead, cast.agent, cast.requester, cast.auditor):
        assert_problem(who.post(f"/api-keys/{credential}/revoke", {"reason": "not mine"}), 403)
    assert_problem(
        cast.admin.post(f"/api-keys/{uuid.uuid4()}/revoke", {"reason": "no such key"}), 404
    )
    ticket = cast.requester.open_ticket(queue=cast.queue)
    assert_problem(cast.admin.post(f"/api-keys/{ticket}/revoke", {"reason": "a ticket"}), 404)
    assert_problem(cast.admin.get(f"/escalations/{ticket}"), 404)
    missing = cast.admin.post(f"/api-keys/{credential}/revoke", {})
    assert_problem(missing, 422)
    assert "reason" in missing.text
    # None of that touched the key.
    assert server.client(issued["extra"]["api_key"]).get("/tickets").status_code == 200
