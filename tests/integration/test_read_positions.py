"""GET /tickets/{id} takes ``min_position`` as the views' queries do (issue #13 item 4):
on the embedded store, a position the log has reached answers at once and a later one,
never recorded, is 422 naming the field; on Kafka it waits for this server's cache
(tests/e2e/test_kafka_servers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from engine.bootstrap import Runtime, build_runtime
from engine.settings import Settings

ADMIN_KEY = "positions-admin-key-0123456789abc"
TICKET = {"title": "VPN", "description": "down", "category": "network"} | {
    "impact": "low",
    "urgency": "low",
}


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


def test_a_ticket_read_with_min_position(client: TestClient) -> None:
    opened = client.post("/tickets", json=TICKET)
    assert opened.status_code == 201, opened.text
    ticket, position = opened.json()["aggregate_id"], opened.json()["position"]
    shown = client.get(f"/tickets/{ticket}", params={"min_position": position})
    assert shown.status_code == 200, shown.text
    assert shown.headers["ETag"] == opened.headers["ETag"]

    later = client.get(f"/tickets/{ticket}", params={"min_position": position + 1000})
    assert later.status_code == 422, later.text
    assert "min_position" in later.json()["detail"]
    assert client.get(f"/tickets/{ticket}", params={"min_position": -1}).status_code == 422
