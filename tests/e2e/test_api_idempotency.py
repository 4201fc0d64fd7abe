"""Idempotency-Key over HTTP: a retry answers the first result and records nothing new,
a reused key with another request is refused, and both hold across a restart.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server import (
    ADMIN_KEY,
    Cast,
    ServerProcess,
    assert_problem,
    at_once,
    make_cast,
    read_events,
    start_server,
    ticket_body,
)

pytestmark = pytest.mark.e2e


def without_replayed(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "replayed"}


def count_events(cast: Cast) -> int:
    return len(read_events(cast.admin.http))


@pytest.fixture(scope="module")
def restartable(e2e_dir: Path) -> Iterator[list[ServerProcess]]:
    """The module's server, in a list so a test can replace it by a restarted one."""
    servers = [start_server(e2e_dir / "data", e2e_dir / "logs", ADMIN_KEY)]
    yield servers
    servers[-1].stop()


@pytest.fixture(scope="module")
def people(restartable: list[ServerProcess]) -> Iterator[Cast]:
    cast = make_cast(restartable[-1], ADMIN_KEY)
    yield cast
    cast.close()


def test_retried_post_returns_the_first_response_and_records_nothing(people: Cast) -> None:
    key = {"Idempotency-Key": "open-printer-ticket-1"}
    first = people.requester.post("/tickets", ticket_body(title="printer"), headers=key)
    assert first.status_code == 201, first.text
    assert first.json()["replayed"] is False
    recorded = count_events(people)

    # Retry (e.g. after a lost response): same status, body and ETag, replayed.
    for _ in range(3):
        retry = people.requester.post("/tickets", ticket_body(title="printer"), headers=key)
        assert retry.status_code == 201, retry.text
        assert retry.json()["replayed"] is True
        assert without_replayed(retry.json()) == without_replayed(first.json())
        assert retry.headers["ETag"] == first.headers["ETag"]
    assert count_events(people) == recorded
    # Exactly one ticket exists for the key.
    opened = [
        line
        for line in read_events(people.admin.http)
        if line["event"]["type"] == "TicketOpened"
        and line["event"]["aggregate_id"] == first.json()["aggregate_id"]
    ]
    assert len(opened) == 1


def test_retry_after_other_changes_still_answers_the_first_result(people: Cast) -> None:
    ticket_id = people.requester.open_ticket()
    url = f"/tickets/{ticket_id}/comments"
    key = {"Idempotency-Key": "comment-once"}
    first = people.agent.post(url, {"body": "on it"}, headers=key)
    assert first.status_code == 200, first.text
    assert people.agent.post(url, {"body": "second comment"}).status_code == 200
    recorded = count_events(people)

    retry = people.agent.post(url, {"body": "on it"}, headers=key)
    assert retry.status_code == 200, retry.text
    body = retry.json()
    assert body["replayed"] is True
    assert body["aggregate_id"] == ticket_id
    assert body["version"] == first.json()["version"]
    assert retry.headers["ETag"] == first.headers["ETag"]
    # The position answers "where can I read my change": never before the first one.
    assert body["position"] >= first.json()["position"]
    assert count_events(people) == recorded
    shown = people.agent.get(f"/tickets/{ticket_id}").json()
    assert shown["version"] == first.json()["version"] + 1


def test_same_key_with_a_different_request_is_422(people: Cast) -> None:
    key = {"Idempotency-Key": "reused-key"}
    first = people.requester.post("/tickets", ticket_body(title="monitor"), headers=key)
    assert first.status_code == 201, first.text
    recorded = count_events(people)

    other_body = people.requester.post("/tickets", ticket_body(title="keyboard"), headers=key)
    assert_problem(other_body, 422, field="Idempotency-Key")
    ticket_id = first.json()["aggregate_id"]
    other_path = people.requester.post(
        f"/tickets/{ticket_id}/comments", {"body": "hi"}, headers=key
    )
    assert_problem(other_path, 422, field="Idempotency-Key")
    assert count_events(people) == recorded


def test_keys_belong_to_their_principal(people: Cast) -> None:
    key = {"Idempotency-Key": "shared-by-accident"}
    mine = people.requester.post("/tickets", ticket_body(title="desk lamp"), headers=key)
    theirs = people.other_requester.post("/tickets", ticket_body(title="desk lamp"), headers=key)
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert theirs.json()["replayed"] is False
    assert mine.json()["aggregate_id"] != theirs.json()["aggregate_id"]


def test_refused_commands_are_not_remembered(people: Cast) -> None:
    ticket_id = people.requester.open_ticket()
    key = {"Idempotency-Key": "start-too-early"}
    url = f"/tickets/{ticket_id}/start"
    assert_problem(people.lead.post(url, headers=key), 409)
    assert people.lead.post(
        f"/tickets/{ticket_id}/assign",
        {"queue": people.queue, "agent_id": people.lead.agent_id},
    ).is_success
    # The same key now succeeds: a refusal recorded nothing, not even the key.
    r = people.lead.post(url, headers=key)
    assert r.status_code == 200, r.text
    assert r.json()["replayed"] is False


def test_concurrent_first_tries_with_one_key_record_once(
    restartable: list[ServerProcess], people: Cast
) -> None:
    server = restartable[-1]
    for n in range(5):
        key = {"Idempotency-Key": f"double-click-{n}"}
        clients = [server.client(people.requester.key) for _ in range(2)]
        for c in clients:  # connect before the race
            assert c.get("/health").status_code == 200
        responses = at_once(
            [
                partial(c.post, "/tickets", json=ticket_body(title="double"), headers=key)
                for c in clients
            ]
        )
        for c in clients:
            c.close()
        assert len(responses) == 2
        for r in responses:
            assert r.status_code in (201, 409), r.text
            if r.status_code == 409:
                assert_problem(r, 409)
        created = {r.json()["aggregate_id"] for r in responses if r.status_code == 201}
        assert len(created) == 1, [r.json() for r in responses]


def test_agent_registration_retry_does_not_repeat_the_key(people: Cast) -> None:
    key = {"Idempotency-Key": "register-dana"}
    body = {"name": "Dana", "queues": [people.queue]}
    first = people.admin.post("/agents", body, headers=key)
    assert first.status_code == 201, first.text
    assert first.json()["extra"]["api_key"].startswith("tk_")
    retry = people.admin.post("/agents", body, headers=key)
    assert retry.status_code == 201, retry.text
    assert retry.json()["replayed"] is True
    assert retry.json()["aggregate_id"] == first.json()["aggregate_id"]
    # Keys are stored hashed: a replay cannot show the key again, but names its owner.
    assert "api_key" not in retry.json()["extra"]
    assert retry.json()["extra"]["principal_id"] == first.json()["extra"]["principal_id"]
    names = [a["name"] for a in people.lead.get("/agents").json()]
    assert names.count("Dana") == 1


def test_retry_after_a_restart_returns_the_first_result(
    restartable: list[ServerProcess], people: Cast
) -> None:
    server = restartable[-1]
    key = {"Idempotency-Key": "before-the-restart"}
    first = people.requester.post("/tickets", ticket_body(title="phone"), headers=key)
    assert first.status_code == 201, first.text
    events_before = read_events(people.admin.http)

    # Restart on the same data directory.
    server.stop_gracefully()
    restarted = start_server(server.data_dir, server.data_dir.parent / "logs", ADMIN_KEY)
    restartable.append(restarted)
    again = people.on(restarted)
    try:
        retry = again.requester.post("/tickets", ticket_body(title="phone"), headers=key)
        assert retry.status_code == 201, retry.text
        assert retry.json()["replayed"] is True
        assert without_replayed(retry.json()) == without_replayed(first.json())
        assert retry.headers["ETag"] == first.headers["ETag"]
        assert read_events(again.admin.http) == events_before
        # A reused key is still refused after the restart.
        other = again.requester.post("/tickets", ticket_body(title="tablet"), headers=key)
        assert_problem(other, 422, field="Idempotency-Key")
    finally:
        again.close()


def test_a_retry_answers_the_first_position_not_the_head(
    restartable: list[ServerProcess], people: Cast
) -> None:
    # (#15 item 13) The replay is the first result exactly, position included.
    people = people.on(restartable[-1])  # the module's server may have been restarted
    key = {"Idempotency-Key": "position-kept"}
    ticket_id = people.requester.open_ticket()
    url, body = f"/tickets/{ticket_id}/comments", {"body": "first try"}
    first = people.requester.post(url, body, headers=key)
    assert first.status_code == 200, first.text
    people.requester.open_ticket()  # the log moves on
    again = people.requester.post(url, body, headers=key)
    assert again.json()["replayed"] is True
    assert without_replayed(again.json()) == without_replayed(first.json())
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["X-Position"] == first.headers["X-Position"]


@pytest.mark.parametrize("route", ["assign", "comments", "open"])
def test_twenty_concurrent_requests_with_one_key_answer_one_result(
    restartable: list[ServerProcess], people: Cast, route: str
) -> None:
    # (#15 item 13) One key, one body, 20 at once: one result, 19 replays of it.
    server = restartable[-1]
    people = people.on(server)  # the module's server may have been restarted
    ticket_id = people.requester.open_ticket(queue=people.queue)
    url, body, actor = {
        "assign": (
            f"/tickets/{ticket_id}/assign",
            {"agent_id": people.agent.agent_id},
            people.lead,
        ),
        "comments": (f"/tickets/{ticket_id}/comments", {"body": "twenty"}, people.requester),
        "open": ("/tickets", ticket_body(title="twenty"), people.requester),
    }[route]
    key = {"Idempotency-Key": f"twenty-at-once-{route}"}
    clients = [server.client(actor.key) for _ in range(20)]
    for c in clients:  # connect before the race
        assert c.get("/health").status_code == 200
    responses = at_once([partial(c.post, url, json=body, headers=key) for c in clients])
    for c in clients:
        c.close()
    assert len({r.status_code for r in responses}) == 1, [r.text for r in responses]
    assert responses[0].status_code in (200, 201), responses[0].text
    answers = {(str(without_replayed(r.json())), r.headers["ETag"]) for r in responses}
    assert len(answers) == 1, answers
    assert sorted(r.json()["replayed"] for r in responses) == [False] + [True] * 19
