"""The service-level routes over HTTP (in-process): configuration is versioned and checked,
availability is the agent's own, and GET /tickets/{id}/sla shows the clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from test_clock_world import FakeTime

from api.app import create_app
from api.routers import sla as sla_routes
from engine.bootstrap import Runtime, build_runtime
from engine.processes.sla_clock import SlaClockProcess
from engine.settings import Settings

ADMIN_KEY = "integration-admin-key-0123456789"
LONDON = ZoneInfo("Europe/London")
FRIDAY = datetime(2026, 5, 22, 16, 55, tzinfo=LONDON)  # Monday 25 May is a bank holiday


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(data_dir=tmp_path, bootstrap_admin_key=ADMIN_KEY)
    rt = build_runtime(settings, clock=FakeTime(FRIDAY), start_views=False)
    yield rt
    rt.close()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    app = create_app(runtime)
    if not any(getattr(r, "path", "") == "/sla/policy" for r in app.routes):
        app.include_router(sla_routes.router)  # until api/app.py includes it
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as c:
        yield c


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def as_key(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


LONDON_OFFICE = {
    "name": "london-office",
    "timezone": "Europe/London",
    "working_hours": {str(d): [["09:00", "17:00"]] for d in range(5)},
    "holiday_country": "GB",
    "holiday_subdivision": "ENG",
    "reason": "UK support hours",
}


def policy_body(p1_calendar: str) -> dict[str, Any]:
    minutes = {"P1": (15, 240), "P2": (60, 480), "P3": (240, 1440), "P4": (480, 2400)}
    return {
        "targets": {
            p: {"first_response_minutes": f, "resolution_minutes": r, "calendar": p1_calendar}
            for p, (f, r) in minutes.items()
        },
        "at_risk_share": 0.8,
        "reason": "UK desk",
    }


def test_policy_and_calendars_are_versioned_and_checked(client: TestClient) -> None:
    default = ok(client.get("/sla/policy"))
    assert default["version"] == 0
    assert default["targets"]["P1"] == {
        "first_response_minutes": 15,
        "resolution_minutes": 240,
        "calendar": "24x7",
    }
    # A calendar must be well formed, and a policy may only name known calendars.
    overlapping = {
        **LONDON_OFFICE,
        "working_hours": {"0": [["09:00", "17:00"], ["16:00", "18:00"]]},
    }
    problem = client.post("/sla/calendars", json=overlapping)
    assert problem.status_code == 422 and "overlap" in problem.json()["detail"]
    assert client.post("/sla/policy", json=policy_body("london-office")).status_code == 409
    assert ok(client.post("/sla/calendars", json=LONDON_OFFICE))["version"] == 1
    assert ok(client.post("/sla/policy", json=policy_body("london-office")))["version"] == 1
    incomplete = policy_body("24x7")
    del incomplete["targets"]["P4"]
    assert client.post("/sla/policy", json=incomplete).status_code == 422
    assert ok(client.get("/sla/policy"))["at_risk_share"] == 0.8
    assert ok(client.get("/sla/policy", params={"version": 0}))["at_risk_share"] == 0.75
    assert ok(client.get("/sla/calendars")) == ["24x7", "business-hours", "london-office"]
    office = ok(client.get("/sla/calendars/london-office"))
    assert office["version"] == 1 and office["calendar"]["holiday_country"] == "GB"
    assert client.get("/sla/calendars/nowhere").status_code == 404


def test_a_p1_opened_friday_1655_before_a_bank_holiday_shows_its_due_times(
    client: TestClient, runtime: Runtime
) -> None:
    ok(client.post("/sla/calendars", json=LONDON_OFFICE))
    ok(client.post("/sla/policy", json=policy_body("london-office")))
    created = client.post(
        "/tickets",
        json={
            "title": "Payroll down",
            "description": "nobody can log in",
            "category": "apps",
            "impact": "high",
            "urgency": "high",
        },
    )
    ticket = ok(created, 201)["aggregate_id"]
    assert client.get(f"/tickets/{ticket}/sla").status_code == 404  # not started yet
    SlaClockProcess(runtime.app, runtime.clock).run_once()
    view = ok(client.get(f"/tickets/{ticket}/sla"))
    assert (view["priority"], view["policy_version"], view["calendar"]) == (
        "P1",
        1,
        "london-office",
    )
    due = datetime.fromisoformat(view["first_response"]["due_at"]).astimezone(LONDON)
    assert due == datetime(2026, 5, 26, 9, 10, tzinfo=LONDON)  # Tuesday 09:10
    resolution = datetime.fromisoformat(view["resolution"]["due_at"]).astimezone(LONDON)
    assert resolution == datetime(2026, 5, 26, 12, 55, tzinfo=LONDON)
    assert view["status"] == "on_track" and view["first_response"]["elapsed"] == 0.0
    assert view["first_response"]["remaining"] == 900.0
    assert client.get(f"/tickets/{uuid4()}/sla").status_code == 404


def test_queue_routing_escalation_rules_and_availability(client: TestClient) -> None:
    ok(client.post("/queues", json={"name": "network"}), 201)
    ann = ok(client.post("/agents", json={"name": "Ann", "queues": ["network"]}), 201)
    bo = ok(client.post("/agents", json={"name": "Bo", "queues": ["network"]}), 201)
    assert ok(client.get("/queues/network/routing-policy"))["policy"] == "manual"
    ok(client.post("/queues/network/routing-policy", json={"policy": "least_loaded"}))
    assert ok(client.get("/queues/network/routing-policy"))["version"] == 1
    assert (
        client.post("/queues/nowhere/routing-policy", json={"policy": "manual"}).status_code == 404
    )
    rules = {
        "default": {
            "on_breach": {"kind": "functional", "target_type": "vendor", "target": "acme"},
            "targets": ["resolution"],
        },
        "reason": "the vendor runs the VPN",
    }
    ok(client.post("/queues/network/escalation-rules", json=rules))
    shown = ok(client.get("/queues/network/escalation-rules"))
    assert shown["version"] == 1 and shown["default"]["on_breach"]["target"] == "acme"
    incoherent = {"default": {"on_breach": {"kind": "hierarchical", "target_type": "vendor"}}}
    assert client.post("/queues/network/escalation-rules", json=incoherent).status_code == 422
    # Agents set their own availability; another agent may not.
    path = f"/agents/{ann['aggregate_id']}/availability"
    body = {"status": "away", "reason": "dentist"}
    assert client.post(path, json=body, headers=as_key(bo["extra"]["api_key"])).status_code == 403
    ok(client.post(path, json=body, headers=as_key(ann["extra"]["api_key"])))
    shown = ok(client.get(path))
    assert (shown["status"], shown["available_now"], shown["why"]) == (
        "away",
        False,
        "status away",  # the reason is the agent's personal data, not an explanation
    )
    schedule = {
        "timezone": "Europe/London",
        "working_hours": {"5": [["18:00", "00:00"]], "6": [["00:00", "00:00"]]},
        "on_call": [{"start": "2026-05-22T17:00:00Z", "end": "2026-05-22T23:00:00Z"}],
    }
    ok(client.post(f"/agents/{bo['aggregate_id']}/schedule", json=schedule))
    bo_now = ok(client.get(f"/agents/{bo['aggregate_id']}/availability"))
    assert bo_now["available_now"] is False and bo_now["why"] == "off shift"  # Friday 16:55
