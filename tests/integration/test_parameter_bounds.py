"""Every parameter of every route is bounded (#15 items 1 and 2): the routes and their
parameters are read from the served OpenAPI document, so a new one is covered at once.

- every path, query and header parameter's schema says how large it may be;
- every time parameter, fuzzed with any instant (far past, far future, odd offsets,
  naive, numbers, junk), answers a 2xx or a 4xx problem naming it, never a 5xx, and
  within TICKETING_WAIT_TIMEOUT_S; a future ``as_of`` is refused;
- overflowing integers and instants are a 422 naming the field, and nothing is logged as
  an unexpected error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.app import create_app
from engine.bootstrap import Runtime, build_runtime
from engine.settings import Settings
from tests.support.openapi import (
    Parameter,
    is_bounded,
    is_instant,
    is_integer,
    parameters,
    request,
)

ADMIN_KEY = "bounds-admin-key-0123456789abcdef"
WAIT_TIMEOUT_S = 5.0
OVERFLOWING_INTEGERS = [10**30, -(10**30), 2**63, -(2**63) - 1, "1e3", "0.5"]
OVERFLOWING_INSTANTS = [
    "9999-12-31T23:00:00-01:00",  # past the largest datetime once in UTC
    "0001-01-01T00:00:00+01:00",  # before the smallest
    "99999-01-01T00:00:00Z",
    "0.5",  # a number is not a date
    "1e20",
    "-1",
    "2026-01-01T00:00:00",  # no offset
]


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    data: Path = tmp_path_factory.mktemp("bounds")
    settings_ = Settings(
        data_dir=data, bootstrap_admin_key=ADMIN_KEY, wait_timeout_s=WAIT_TIMEOUT_S
    )
    rt = build_runtime(settings_)
    yield rt
    rt.close()


@pytest.fixture(scope="module")
def client(runtime: Runtime) -> Iterator[TestClient]:
    app = create_app(runtime)
    with TestClient(
        app, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, raise_server_exceptions=False
    ) as c:
        yield c


@pytest.fixture(scope="module")
def world(client: TestClient) -> dict[str, Any]:
    """Real resources for the path parameters, and a ticket whose SLA clock runs."""
    assert client.post("/queues", json={"name": "desk"}).status_code == 201
    agent = client.post("/agents", json={"name": "Ann", "queues": ["desk"], "capacity": 5})
    ticket_body = {"title": "VPN", "description": "down", "category": "network"}
    ticket = client.post(
        "/tickets", json={**ticket_body, "impact": "high", "urgency": "high", "queue": "desk"}
    )
    ticket_id = ticket.json()["aggregate_id"]
    escalation = client.post(
        f"/tickets/{ticket_id}/escalations",
        json={"kind": "functional", "target_type": "vendor", "target": "acme", "reason": "x"},
    )
    deadline = time.monotonic() + 20
    while client.get(f"/tickets/{ticket_id}").json().get("sla") is None:
        assert time.monotonic() < deadline, "the SLA clock never started"
        time.sleep(0.05)
    return {
        "path": {
            "ticket_id": ticket_id,
            "escalation_id": escalation.json()["aggregate_id"],
            "agent_id": agent.json()["aggregate_id"],
            "queue": "desk",
            "type_name": "TicketOpened",
            "name": "business-hours",
            "subject_id": "nobody",
            "credential_id": "00000000-0000-0000-0000-000000000000",
        },
        "defaults": {"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"},
        "spec": client.get("/openapi.json").json(),
    }


def of_kind(world: dict[str, Any], kind: Any) -> list[Parameter]:
    found = [p for p in parameters(world["spec"]) if kind(p)]
    assert found, "no such parameters: the walk is broken"
    return found


def send(client: TestClient, world: dict[str, Any], p: Parameter, value: Any) -> Any:
    url, query, headers = request(world["spec"], p, value, world["path"], world["defaults"])
    return client.request(p.method.upper(), url, params=query, headers=headers)


def assert_refused_naming(response: Any, p: Parameter) -> None:
    assert 400 <= response.status_code < 500, (p.label, response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json"), p.label
    body = response.json()
    fields = [e["field"] for e in body.get("errors") or []]
    assert any(f.split(".")[-1] == p.name for f in fields) or p.name in body["detail"], (
        p.label,
        body,
    )


# The credential is bounded where it is read (api.deps.get_principal): any value that
# cannot be a key, however long, is a 401, not a 422.
UNBOUNDED_ON_PURPOSE = {("header", "authorization")}


def test_every_parameter_of_every_route_is_bounded(world: dict[str, Any]) -> None:
    unbounded = [
        p.label
        for p in parameters(world["spec"])
        if not is_bounded(p.schema) and (p.location, p.name) not in UNBOUNDED_ON_PURPOSE
    ]
    assert not unbounded, unbounded


def test_an_overlong_credential_is_401(client: TestClient) -> None:
    r = client.get("/queues", headers={"Authorization": "Bearer " + "k" * 100_000})
    assert r.status_code == 401, r.text


@pytest.mark.parametrize("value", OVERFLOWING_INTEGERS, ids=str)
def test_overflowing_integers_are_refused_naming_the_field(
    client: TestClient, world: dict[str, Any], value: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        for p in of_kind(world, is_integer):
            assert_refused_naming(send(client, world, p, value), p)
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


@pytest.mark.parametrize("value", OVERFLOWING_INSTANTS)
def test_overflowing_instants_are_refused_naming_the_field(
    client: TestClient, world: dict[str, Any], value: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        for p in of_kind(world, is_instant):
            assert_refused_naming(send(client, world, p, value), p)
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


def test_a_future_as_of_is_refused(client: TestClient, world: dict[str, Any]) -> None:
    ticket = world["path"]["ticket_id"]
    soon = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    for as_of in ["9999-12-31T00:00:00Z", soon]:
        r = client.get(f"/tickets/{ticket}", params={"as_of": as_of})
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == "query.as_of"
    assert client.get(f"/tickets/{ticket}", params={"as_of": datetime.now(UTC)}).status_code == 200


# Any instant a client might write: far past to far future, whole-hour and odd offsets.
OFFSETS = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
INSTANTS = st.one_of(
    st.datetimes(datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59), timezones=OFFSETS).map(
        lambda d: d.isoformat()
    ),
    st.datetimes(datetime(2020, 1, 1), datetime(2030, 1, 1)).map(lambda d: d.isoformat()),
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=True).map(str),
    st.text(max_size=40),
)


@settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_every_time_parameter_is_answered_within_the_limit(
    client: TestClient, world: dict[str, Any], data: st.DataObject
) -> None:
    p = data.draw(st.sampled_from(of_kind(world, is_instant)), label="parameter")
    value = data.draw(INSTANTS, label="value")

    started = time.monotonic()
    r = send(client, world, p, value)
    took = time.monotonic() - started

    assert r.status_code < 500, (p.label, value, r.text)
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith("application/problem+json")
    assert took < WAIT_TIMEOUT_S, (p.label, value, took)
