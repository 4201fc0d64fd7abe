"""Erasure that really erases (#15 items 4, 9, 10): a desk's day over HTTP with a unique
marker in every personal value (names, emails, titles, descriptions, every reason, note
and comment), then a scan of every file of the data directory and of every read route,
before and after the erasure of the requester and of the agents.

Before: no marker is on disk in clear (the log, the views, the key store, their
write-ahead logs), authorized reads show them. After: no read route shows any of them
(they read ``[erased]``), and no file holds them. ``GET /events`` always carries the
envelope as stored: every personal field a sealed object, whose subject is an opaque id.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from engine.bootstrap import Runtime, build_runtime
from engine.domain.base import EVENT_TYPES
from engine.integrity.personal import ERASED, is_encrypted
from engine.settings import Settings
from tests.contract.test_kafka_kcat import kcat_consume

ADMIN_KEY = "erasure-admin-key-0123456789abcdef"


class Markers:
    """Unique personal values: lower case (the views fold titles), with characters no
    base64 or hex text has, so a ciphertext cannot contain one by chance."""

    def __init__(self) -> None:
        self.all: list[str] = []
        self.unread: list[str] = []
        """Values no read route shows (directory reasons, key holders' names): only
        ``GET /events`` carries them, sealed."""

    def __call__(self, what: str, read: bool = True) -> str:
        value = f"pii~{len(self.all):02d}~{what}"
        self.all.append(value)
        if not read:
            self.unread.append(value)
        return value

    def email(self, what: str) -> str:
        value = f"pii.{len(self.all):02d}.{what}@example.org"
        self.all.append(value)
        return value


class Desk:
    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.position = 0

    def send(self, path: str, body: Any = None, key: str = ADMIN_KEY, status: int = 200) -> Any:
        r = self.client.post(path, json=body, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == status, (path, r.text)
        answer = r.json()
        self.position = max(self.position, answer["position"])
        return answer

    def get(self, path: str, key: str = ADMIN_KEY, **params: Any) -> str:
        """A read; the views' routes wait for the last command's position."""
        if path.startswith(("/queues", "/reports", "/audit")) or path.endswith(
            ("/tickets", "/history", "/workload")
        ):
            params["min_position"] = self.position
        r = self.client.get(path, params=params, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200, (path, r.text)
        return r.text


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = build_runtime(Settings(data_dir=tmp_path / "data", bootstrap_admin_key=ADMIN_KEY))
    yield rt
    rt.close()


def a_day_with_personal_data(desk: Desk, m: Markers) -> dict[str, Any]:
    """Every event type with personal fields, each such field holding a marker."""
    desk.send("/queues", {"name": "desk"}, status=201)
    desk.send("/queues", {"name": "second"}, status=201)
    lead = desk.send(
        "/agents",
        {"name": m("lead name"), "email": m.email("lead"), "role": "lead", "queues": ["desk"]},
        status=201,
    )
    bo = desk.send(
        "/agents",
        {"name": m("bo name"), "email": m.email("bo"), "queues": ["desk", "second"]},
        status=201,
    )
    lead_id, lead_key = lead["aggregate_id"], lead["extra"]["api_key"]
    bo_id, bo_key = bo["aggregate_id"], bo["extra"]["api_key"]
    desk.send(f"/agents/{lead_id}", {"capacity": 1, "reason": m("capacity reason", read=False)})
    desk.send(f"/agents/{bo_id}", {"capacity": 1, "reason": m("bo capacity reason", read=False)})
    desk.send(
        f"/agents/{bo_id}/availability",
        {"status": "away", "reason": m("away reason", read=False)},
        bo_key,
    )
    desk.send(f"/agents/{bo_id}/availability", {"status": "available"}, bo_key)
    schedule = {
        "timezone": "UTC",
        "working_hours": {str(d): [["00:00", "00:00"]] for d in range(7)},
        "reason": m("schedule reason", read=False),
    }
    desk.send(f"/agents/{bo_id}/schedule", schedule, bo_key)
    requester = desk.send(
        "/api-keys", {"name": m("requester name", read=False), "role": "requester"}, status=201
    )
    rita, rita_key = requester["extra"]["principal_id"], requester["extra"]["api_key"]
    # A second key for the same holder, by their id, revoked with a reason.
    second = desk.send(
        "/api-keys",
        {"name": m("second key", read=False), "role": "requester", "principal_id": rita},
        status=201,
    )
    desk.send(
        f"/api-keys/{second['aggregate_id']}/revoke", {"reason": m("revoke reason", read=False)}
    )

    def ticket(what: str) -> str:
        body = {
            "title": m(f"{what} title"),
            "description": m(f"{what} description"),
            "requester_name": m(f"{what} requester name"),
            "requester_email": m.email(what),
            "category": "network",
            "impact": "low",
            "urgency": "low",
            "queue": "desk",
        }
        return str(desk.send("/tickets", body, rita_key, status=201)["aggregate_id"])

    one, two, three, four = (ticket(w) for w in ("one", "two", "three", "four"))
    t1, t2 = f"/tickets/{one}", f"/tickets/{two}"
    triage = {"impact": "low", "urgency": "low", "priority": "P1", "reason": m("override")}
    desk.send(f"{t1}/triage", triage, lead_key)
    desk.send(f"{t1}/assign", {"agent_id": lead_id}, lead_key)
    desk.send(f"/tickets/{three}/assign", {"agent_id": bo_id}, lead_key)
    # Both at capacity: the next assignments override it, with reasons.
    over = {"agent_id": lead_id, "override_capacity_reason": m("override capacity")}
    desk.send(f"{t2}/assign", over, lead_key)
    reassign = {
        "agent_id": bo_id,
        "reason": m("reassign reason"),
        "override_capacity_reason": m("reassign capacity"),
    }
    desk.send(f"{t2}/assign", reassign, lead_key)
    desk.send(f"{t2}/release", {"reason": m("release reason")}, lead_key)
    desk.send(f"{t2}/assign", {"queue": "second", "reason": m("queue reason")}, lead_key)
    desk.send(f"{t1}/comments", {"body": m("comment")}, rita_key)
    desk.send(f"{t1}/comments", {"body": m("note"), "internal": True}, lead_key)
    desk.send(f"{t1}/start", None, lead_key)
    desk.send(f"{t1}/pend", {"reason": m("pend reason")}, lead_key)
    desk.send(f"{t1}/resume", {"note": m("resume note")}, lead_key)
    desk.send(f"{t1}/resolve", {"resolution_code": "fixed", "note": m("resolve")}, lead_key)
    desk.send(f"{t1}/reopen", {"reason": m("reopen reason")}, rita_key)
    desk.send(f"{t1}/resolve", {"resolution_code": "fixed", "note": m("again")}, lead_key)
    desk.send(f"{t1}/satisfaction", {"score": 4, "comment": m("csat")}, rita_key)
    desk.send(f"{t1}/close", {"reason": m("close reason")}, lead_key)
    escalate = {"kind": "functional", "target_type": "queue", "target": "second"}
    first = desk.send(f"{t2}/escalations", escalate | {"reason": m("escalation")}, lead_key, 201)
    e1 = f"/escalations/{first['aggregate_id']}"
    desk.send(f"{e1}/acknowledge", {"note": m("ack note")}, lead_key)
    desk.send(f"{e1}/resolve", {"note": m("escalation resolved")}, lead_key)
    other = desk.send(f"{t2}/escalations", escalate | {"reason": m("again up")}, lead_key, 201)
    e2 = f"/escalations/{other['aggregate_id']}"
    desk.send(f"{e2}/withdraw", {"reason": m("withdraw reason")}, lead_key)
    desk.send(f"{t2}/cancel", {"reason": m("cancel reason")}, rita_key)
    desk.send(f"/tickets/{three}/merge", {"into_ticket_id": four, "reason": m("merge")}, lead_key)
    return {
        "rita": rita,
        "agents": [f"agent:{lead_id}", f"agent:{bo_id}"],
        "tickets": [one, two, three, four],
        "escalations": [e1, e2],
        "agent_ids": [lead_id, bo_id],
    }


def files_holding(data_dir: Path, markers: list[str]) -> dict[str, list[str]]:
    """Which markers each file of the data directory holds in clear."""
    found: dict[str, list[str]] = {}
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
        content = path.read_bytes()
        hits = [mk for mk in markers if mk.encode() in content]
        if hits:
            found[str(path.relative_to(data_dir))] = hits
    return found


def every_read(desk: Desk, day: dict[str, Any]) -> dict[str, str]:
    """The body of every read route that can show personal data, as the admin (or the
    auditor's routes as the admin: the admin may read them all)."""
    now = datetime.now(UTC)
    window = {"from": (now - timedelta(days=1)).isoformat(), "to": now.isoformat()}
    reads = {
        "/events": desk.get("/events", limit=10000),
        "/agents": desk.get("/agents"),
        "/queues/desk": desk.get("/queues/desk", status="closed"),
        "/tickets": desk.get("/tickets"),
        "/audit/export": desk.get("/audit/export"),
        "/audit/export.csv": desk.get("/audit/export", format="csv"),
        "/reports/agents": desk.get("/reports/agents", **window),
    }
    for ticket in day["tickets"]:
        for tail in ("", "/history", "/sla"):
            try:
                reads[f"/tickets/{ticket}{tail}"] = desk.get(f"/tickets/{ticket}{tail}")
            except AssertionError:
                if tail != "/sla":  # a ticket whose clock never started has no SLA
                    raise
    for escalation in day["escalations"]:
        reads[escalation] = desk.get(escalation)
    for agent in day["agent_ids"]:
        reads[f"/agents/{agent}/availability"] = desk.get(f"/agents/{agent}/availability")
        reads[f"/agents/{agent}/workload"] = desk.get(f"/agents/{agent}/workload")
    return reads


def sealed_fields(events_text: str) -> dict[str, set[str]]:
    """Every personal field of every event on ``GET /events``, by event type; each must
    be sealed (or null) there, with an opaque subject."""
    found: dict[str, set[str]] = {}
    for line in events_text.splitlines():
        event = json.loads(line)["event"]
        cls = EVENT_TYPES[event["type"]]
        for name in cls.personal_fields:
            value = event["data"].get(name)
            if value is None:
                continue
            assert is_encrypted(value), (event["type"], name, value)
            subject = value["subject"]
            if subject != "admin":  # the first start's admin key, a built-in principal
                UUID(subject.removeprefix("agent:"))  # an opaque id, never a name
            found.setdefault(event["type"], set()).add(name)
    return found


def test_personal_data_is_sealed_on_disk_and_unreadable_everywhere_after_erasure(
    runtime: Runtime,
) -> None:
    a_day_erased(runtime)


@pytest.mark.kafka
def test_on_kafka_no_record_of_the_topic_holds_a_personal_value(
    kcat_bootstrap: str, tmp_path: Path
) -> None:
    topic = f"ticketing.erasure.{uuid4().hex[:10]}"
    settings = Settings(
        data_dir=tmp_path / "data",
        bootstrap_admin_key=ADMIN_KEY,
        kafka_bootstrap_servers=kcat_bootstrap,
        kafka_topic=topic,
    )
    runtime = build_runtime(settings)
    try:
        markers = a_day_erased(runtime)
    finally:
        runtime.close()
    # The raw topic as any consumer reads it (kcat, not our code): keys, headers, values.
    records = kcat_consume(kcat_bootstrap, topic)
    types = {json.loads(r["payload"])["type"] for r in records if r.get("payload")}
    assert {n for n, c in EVENT_TYPES.items() if c.personal_fields} <= types
    raw = json.dumps(records)
    assert [mk for mk in markers if mk in raw] == []


def a_day_erased(runtime: Runtime) -> list[str]:
    """The day, the scans before, the erasures, the scans after; the markers."""
    data_dir = runtime.settings.data_dir
    m = Markers()
    with TestClient(create_app(runtime)) as client:
        desk = Desk(client)
        day = a_day_with_personal_data(desk, m)

        # The day recorded every personal field of every event type that has one.
        before = every_read(desk, day)
        declared = {n: set(c.personal_fields) for n, c in EVENT_TYPES.items() if c.personal_fields}
        assert sealed_fields(before["/events"]) == declared

        # Before: authorized reads show every marker; no file holds one in clear.
        shown = "\n".join(before.values())
        assert [mk for mk in m.all if mk not in shown] == m.unread
        assert files_holding(data_dir, m.all) == {}

        # Erase the requester and both agents.
        for subject in [day["rita"], *day["agents"]]:
            desk.send(f"/subjects/{subject}/erase", {"legal_basis": "GDPR Art. 17(1)(a)"})

        # After: no read route shows a marker, erased fields read [erased], and the
        # stream is as it was (sealed, the same bytes).
        after = every_read(desk, day)
        leaks = {route: [mk for mk in m.all if mk in body] for route, body in after.items()}
        assert {route: hits for route, hits in leaks.items() if hits} == {}
        assert ERASED in after["/tickets/" + day["tickets"][0]]
        assert ERASED in after["/tickets/" + day["tickets"][0] + "/history"]
        assert ERASED in after["/agents"] and ERASED in after["/queues/desk"]
        assert after["/events"].startswith(before["/events"])
        assert sealed_fields(after["/events"]) == declared
        assert files_holding(data_dir, m.all) == {}

        # New personal data of an erased subject is refused (nothing recorded); the
        # same command without any goes through.
        four = f"/tickets/{day['tickets'][3]}"
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        refused = client.post(f"{four}/cancel", json={"reason": "not needed"}, headers=admin)
        assert refused.status_code == 409, refused.text
        assert "erased" in refused.json()["detail"]
        stream = [  # (the clock process may record SLA events meanwhile: not these)
            json.loads(line)["event"] for line in desk.get("/events", limit=10000).splitlines()
        ]
        assert not [
            e
            for e in stream
            if e["aggregate_id"] == day["tickets"][3] and e["type"] == "TicketCancelled"
        ]
        desk.send(f"/agents/{day['agent_ids'][1]}", {"capacity": 2})
    return m.all
