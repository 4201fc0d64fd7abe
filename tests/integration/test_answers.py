"""Answers that say what happened (issue #15, items 7 and 16 and the schema's promises):
an unknown queue's configuration is 404, not a default; erasing a subject that never
existed is 404 and blocks nothing; a 405 names what is allowed; a failed query does not
claim to be an unconfirmed command."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import OperationalError
from fastapi.testclient import TestClient

from api.app import create_app
from engine.bootstrap import Runtime, build_runtime
from engine.settings import Settings
from tests.support.desk import TICKET

ADMIN_KEY = "answers-admin-key-0123456789abc"
NOBODY = "0a0a0a0a-0000-4000-8000-0000000000b0"  # a principal id nobody holds


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = build_runtime(
        Settings(data_dir=tmp_path, bootstrap_admin_key=ADMIN_KEY), start_views=False
    )
    yield rt
    rt.close()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as c:
        yield c


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


@pytest.mark.parametrize("what", ["routing-policy", "escalation-rules"])
def test_an_unknown_queue_has_no_configuration(client: TestClient, what: str) -> None:
    assert "not found" in problem(client.get(f"/queues/nowhere/{what}"), 404)["detail"]
    assert client.post("/queues", json={"name": "nowhere"}).status_code == 201
    assert client.get(f"/queues/nowhere/{what}").status_code == 200


def test_erasing_a_subject_that_never_existed_is_404_and_blocks_nothing(
    client: TestClient,
) -> None:
    body = {"legal_basis": "GDPR Art. 17"}
    assert (
        "not found" in problem(client.post(f"/subjects/{NOBODY}/erase", json=body), 404)["detail"]
    )
    # The id stays usable: a ticket for it records (and seals) its personal data.
    opened = client.post("/tickets", json=TICKET | {"requester_id": NOBODY})
    assert opened.status_code == 201, opened.text
    assert client.post(f"/subjects/{NOBODY}/erase", json=body).status_code == 200
    assert problem(client.post(f"/subjects/{NOBODY}/erase", json=body), 409)


def test_a_405_names_the_allowed_methods(client: TestClient) -> None:
    answer = client.delete("/tickets/6f1d7f3e-93a4-4c55-9d2e-5a4e0c1b7a10/triage")
    problem(answer, 405)
    assert answer.headers["allow"] == "POST"


def test_a_failed_query_says_it_changed_nothing_and_a_failed_command_that_it_is_unconfirmed(
    client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket = client.post("/tickets", json=TICKET).json()["aggregate_id"]

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("disk I/O error")

    monkeypatch.setattr(runtime.app.recorder, "select_events", unavailable)
    query = problem(client.get(f"/tickets/{ticket}"), 503)["detail"]
    assert "query" in query and "not confirmed" not in query
    command = problem(client.post(f"/tickets/{ticket}/comments", json={"body": "x"}), 503)
    assert "not confirmed" in command["detail"] and "Idempotency-Key" in command["detail"]


def test_a_json_body_without_a_content_type_is_415(client: TestClient) -> None:
    # The README promises 415 for a body not declared JSON; before, this gave a 422.
    body = b'{"title": "VPN", "description": "down", "category": "n", "impact": "low"}'
    detail = problem(client.post("/tickets", content=body), 415)["detail"]
    assert "application/json" in detail


@pytest.mark.parametrize("path", ["/sla/calendars", "/agents/{agent}/schedule"])
def test_an_unknown_time_zone_is_named_once_by_its_field(client: TestClient, path: str) -> None:
    agent = client.post("/agents", json={"name": "Ann"}).json()["aggregate_id"]
    body = {"timezone": "Mars/Olympus_Mons", "working_hours": {"0": [["09:00", "17:00"]]}}
    if path == "/sla/calendars":
        body["name"] = "mars"
    answer = problem(client.post(path.format(agent=agent), json=body), 422)
    assert answer["errors"] == [
        {"field": "timezone", "reason": "Value error, unknown IANA time zone 'Mars/Olympus_Mons'"}
    ]
