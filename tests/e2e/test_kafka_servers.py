"""Two `ticketing serve` processes on one topic behind a load balancer (issue #13 item
4, #15 item 13): a client alternating between them sees no spurious 409, reads its own
writes on either with ``min_position``, and a duplicate Idempotency-Key sent to both at
once answers the first result everywhere, position included."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from tests.e2e.server import Cast, ServerProcess, at_once, make_cast, start_server

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]
ADMIN_KEY = "kafka-servers-admin-key-0123456789"
ROUNDS = 30


@pytest.fixture
def pair(kafka_bootstrap: str, tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC": f"ticketing.e2e.{uuid.uuid4().hex[:10]}",
        "TICKETING_KEY_STORE": str(tmp_path / "keys.sqlite"),
    }
    started: list[ServerProcess] = []
    try:
        for name in ("one", "two"):
            data, logs = tmp_path / name / "data", tmp_path / name / "logs"
            started.append(start_server(data, logs, ADMIN_KEY, env))
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def casts(pair: tuple[ServerProcess, ServerProcess]) -> Iterator[tuple[Cast, Cast]]:
    one = make_cast(pair[0], ADMIN_KEY)
    two = one.on(pair[1])
    yield one, two
    one.close()
    two.close()


def test_a_client_alternating_servers_sees_no_spurious_conflict(casts: tuple[Cast, Cast]) -> None:
    one, two = casts
    ticket = one.requester.open_ticket(queue=one.queue)
    versions: list[int] = []
    for n in range(ROUNDS):
        # Each command goes to the server that did not record the previous one, at once.
        here = (one, two)[n % 2]
        r = here.lead.post(f"/tickets/{ticket}/comments", {"body": f"step {n}", "internal": True})
        assert r.status_code == 200, (n, r.text)
        versions.append(r.json()["version"])
    assert versions == list(range(versions[0], versions[0] + ROUNDS))


def test_a_read_with_min_position_is_current_on_the_other_server(
    casts: tuple[Cast, Cast],
) -> None:
    one, two = casts
    ticket = one.requester.open_ticket(queue=one.queue)
    for n in range(10):
        r = one.lead.post(f"/tickets/{ticket}/comments", {"body": f"step {n}", "internal": True})
        assert r.status_code == 200, (n, r.text)
        # Read-your-writes across servers: a view read with the answer's position.
        history = two.lead.get(
            f"/tickets/{ticket}/history", params={"min_position": r.json()["position"]}
        )
        assert history.status_code == 200, history.text
        assert any(f"step {n}" in str(entry) for entry in history.json()), n
        # And the ticket itself, read from the other server's store.
        r = one.lead.post(f"/tickets/{ticket}/comments", {"body": f"again {n}", "internal": True})
        assert r.status_code == 200, (n, r.text)
        shown = two.lead.get(f"/tickets/{ticket}", params={"min_position": r.json()["position"]})
        assert shown.status_code == 200, shown.text
        assert shown.headers["ETag"] == r.headers["ETag"], n


def test_a_reassignment_alternating_servers_answers_its_own_etag(casts: tuple[Cast, Cast]) -> None:
    one, two = casts
    ticket = one.requester.open_ticket(queue=one.queue)
    agents = [one.agent.agent_id, one.agent2.agent_id]
    answered: list[str] = []
    for n in range(ROUNDS):
        # A reassignment decided on a stale assignment would be refused ("already
        # assigned to ...") or answer an old ETag.
        here = (one, two)[n % 2]
        r = here.lead.post(
            f"/tickets/{ticket}/assign", {"agent_id": agents[n % 2], "reason": f"turn {n}"}
        )
        assert r.status_code == 200, (n, r.text)
        answered.append(r.headers["ETag"])
    shown = one.lead.get(f"/tickets/{ticket}").headers["ETag"]
    assert answered[-1] == shown
    assert len(set(answered)) == ROUNDS


def test_one_key_sent_to_both_servers_at_once_answers_one_result(
    pair: tuple[ServerProcess, ServerProcess], casts: tuple[Cast, Cast]
) -> None:
    one, _ = casts
    ticket = one.requester.open_ticket(queue=one.queue)
    body = {"agent_id": one.agent.agent_id}
    clients = [server.client(one.lead.key) for server in pair for _ in range(10)]
    for c in clients:  # connect before the race
        assert c.get("/health").status_code == 200
    responses = at_once(
        [
            partial(
                c.post,
                f"/tickets/{ticket}/assign",
                json=body,
                headers={"Idempotency-Key": "assign-once"},
            )
            for c in clients
        ]
    )
    for c in clients:
        c.close()
    assert [r.status_code for r in responses] == [200] * len(clients), [
        r.text for r in responses if r.status_code != 200
    ]
    answers = {
        (r.json()["aggregate_id"], r.json()["version"], r.json()["position"], r.headers["ETag"])
        for r in responses
    }
    assert len(answers) == 1, answers
    assert sorted(r.json()["replayed"] for r in responses) == [False] + [True] * (len(clients) - 1)
