"""Who may see and move what (issue #15, items 5 and 6): permission is decided before
anything about a ticket is revealed, and an agent moves only tickets of their own
queues."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from engine.bootstrap import Runtime, build_runtime
from engine.settings import Settings
from tests.support.desk import TICKET

ADMIN_KEY = "access-admin-key-0123456789abcdef"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    path: Path = tmp_path_factory.mktemp("access")
    rt = build_runtime(Settings(data_dir=path, bootstrap_admin_key=ADMIN_KEY), start_views=False)
    yield rt
    rt.close()


@pytest.fixture(scope="module")
def app(runtime: Runtime) -> Iterator[Any]:
    application = create_app(runtime)
    with TestClient(application):
        yield application


def client(app: Any, key: str) -> TestClient:
    return TestClient(app, headers={"Authorization": f"Bearer {key}"})


@pytest.fixture(scope="module")
def admin(app: Any) -> TestClient:
    c = client(app, ADMIN_KEY)
    for queue in ("desk", "network"):
        assert c.post("/queues", json={"name": queue}).status_code == 201
    return c


def agent(app: Any, admin: TestClient, name: str, role: str, queues: list[str]) -> Any:
    r = admin.post("/agents", json={"name": name, "role": role, "queues": queues})
    assert r.status_code == 201, r.text
    c = client(app, r.json()["extra"]["api_key"])
    c.agent_id = r.json()["aggregate_id"]  # type: ignore[attr-defined]
    return c


def requester(app: Any, admin: TestClient, name: str) -> TestClient:
    r = admin.post("/api-keys", json={"name": name, "role": "requester"})
    assert r.status_code == 201, r.text
    return client(app, r.json()["extra"]["api_key"])


# --- item 5: a ticket one may not read looks the same at every time -----------------------


@pytest.fixture(scope="module")
def someone_elses(app: Any, admin: TestClient) -> tuple[TestClient, str, str]:
    owner, other = requester(app, admin, "Rita"), requester(app, admin, "Omar")
    opened = owner.post("/tickets", json=TICKET)
    assert opened.status_code == 201, opened.text
    ticket = opened.json()["aggregate_id"]
    assert owner.post(f"/tickets/{ticket}/comments", json={"body": "still down"}).is_success
    return other, ticket, opened_at(owner, ticket)


def opened_at(reader: TestClient, ticket: str) -> str:
    return str(reader.get(f"/tickets/{ticket}").json()["opened_at"]).replace("+00:00", "Z")


READS = [
    "",
    "?as_of=2000-01-01T00:00:00Z",  # before the ticket was opened
    "?as_of={opened}",  # as it was opened
    "?version=1",
    "?version=2",
    "?version=99",  # past its head
]


@pytest.mark.parametrize("query", READS)
def test_a_ticket_one_may_not_read_answers_the_same_at_every_time_and_version(
    someone_elses: tuple[TestClient, str, str], query: str
) -> None:
    other, ticket, opened = someone_elses
    answer = other.get(f"/tickets/{ticket}{query.format(opened=opened)}")
    assert answer.status_code == 403, answer.text
    assert answer.json()["detail"] == "requesters act only on their own tickets"
    assert ticket not in answer.text


@pytest.mark.parametrize("query", READS)
def test_the_owner_still_reads_their_ticket_at_any_time(
    app: Any, admin: TestClient, query: str
) -> None:
    owner = requester(app, admin, "Pat")
    ticket = owner.post("/tickets", json=TICKET).json()["aggregate_id"]
    answer = owner.get(f"/tickets/{ticket}{query.format(opened=opened_at(owner, ticket))}")
    expected = 404 if query in ("?as_of=2000-01-01T00:00:00Z", "?version=99") else 200
    assert answer.status_code == expected, answer.text


# --- item 6: moves between queues ------------------------------------------------------


def ticket_in(admin: TestClient, queue: str | None) -> str:
    body = TICKET | ({"queue": queue} if queue is not None else {})
    opened = admin.post("/tickets", json=body)
    assert opened.status_code == 201, opened.text
    ticket: str = opened.json()["aggregate_id"]
    return ticket


# (who, from queue, body of the move, allowed): "self" is the mover's own agent id.
MOVES = [
    ("desk agent", "network", {"queue": "desk", "agent_id": "self"}, False),
    ("desk agent", "network", {"queue": "desk"}, False),
    ("desk agent", "network", {"agent_id": "self"}, False),
    ("desk agent", "desk", {"queue": "network"}, True),
    ("desk agent", "desk", {"agent_id": "self"}, True),
    ("desk agent", None, {"queue": "desk", "agent_id": "self"}, True),
    ("desk agent", None, {"queue": "network"}, True),
    ("network agent", "network", {"queue": "desk"}, True),
    ("desk lead", "network", {"queue": "desk", "agent_id": "self"}, True),
    ("desk lead", "network", {"queue": "desk"}, True),
]


@pytest.fixture(scope="module")
def movers(app: Any, admin: TestClient) -> dict[str, Any]:
    return {
        "desk agent": agent(app, admin, "Ari", "agent", ["desk"]),
        "network agent": agent(app, admin, "Nia", "agent", ["network"]),
        "desk lead": agent(app, admin, "Lena", "lead", ["desk"]),
    }


@pytest.mark.parametrize(("who", "source", "move", "allowed"), MOVES)
def test_an_agent_moves_only_tickets_of_their_own_queues(
    admin: TestClient,
    movers: dict[str, Any],
    who: str,
    source: str | None,
    move: dict[str, str],
    allowed: bool,
) -> None:
    mover = movers[who]
    ticket = ticket_in(admin, source)
    before = admin.get(f"/tickets/{ticket}").json()
    body = {k: (mover.agent_id if v == "self" else v) for k, v in move.items()}
    answer = mover.post(f"/tickets/{ticket}/assign", json=body)
    after = admin.get(f"/tickets/{ticket}").json()
    if allowed:
        assert answer.status_code == 200, answer.text
        assert after["queue"] == move.get("queue", source)
    else:
        assert answer.status_code == 403, answer.text
        assert f"queue {source!r}" in answer.json()["detail"]
        assert (after["etag"], after["queue"]) == (before["etag"], source)  # nothing recorded
