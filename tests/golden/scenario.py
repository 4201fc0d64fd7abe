"""A scripted day at the service desk, played through the real HTTP API with a fixed
clock and seeded randomness, so that every response body and every recorded event's
bytes come out the same on every run and on every store.

The golden files beside this module are what it produced when they were last
regenerated on purpose (``GOLDEN_UPDATE=1 pytest tests/contract/test_golden.py``); a
diff in them is a change of the wire contract and needs its reason in the commit.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

GOLDEN = Path(__file__).resolve().parent
ADMIN_KEY = "golden-admin-key-0123456789abcdef"
EVE_ID = "0e0e0e0e-0000-4000-8000-00000000e7e0"  # a holder's id chosen by the admin (a UUID)
START = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)  # a Monday with no holiday near
_ROOT = str(GOLDEN.parents[1])
_OURS = (os.path.join(_ROOT, "api") + os.sep, os.path.join(_ROOT, "engine") + os.sep, __file__)
_KAFKA = (os.path.join(_ROOT, "engine", "stores", "kafka"), os.sep + "kafka" + os.sep)


class FixedTime:
    """The desk's clock: moved by the script only."""

    def __init__(self, start: datetime) -> None:
        self.at = start

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@contextmanager
def seeded_randomness(seed: int) -> Iterator[None]:
    """Make the engine's ids, API keys, subject keys and AES nonces (all drawn from
    ``os.urandom``) seeded sequences, while the store's own clients (Kafka producers,
    leases) keep real randomness: what the command path draws is then the same on every
    store and every run. Each kind of draw (a uuid4, a token, a nonce...) has a sequence
    of its own, named by the function that draws, so the order in which different kinds
    are drawn does not matter, only the order within one kind."""
    sequences: dict[str, random.Random] = {}
    real = os.urandom
    lock = threading.Lock()

    def urandom(n: int) -> bytes:
        caller = sys._getframe(1)
        frame = caller
        ours = False
        while frame is not None:
            name = frame.f_code.co_filename
            if any(part in name for part in _KAFKA):
                return real(n)
            if name.startswith(_OURS):
                ours = True
            frame = frame.f_back  # type: ignore[assignment]
        if not ours:
            return real(n)
        kind = caller.f_code.co_name
        with lock:
            if kind not in sequences:
                sequences[kind] = random.Random(f"{seed}:{kind}")
            return sequences[kind].randbytes(n)

    # ``secrets`` draws through ``random.SystemRandom``, which holds its own reference.
    system = random._urandom  # type: ignore[attr-defined]
    os.urandom = random._urandom = urandom  # type: ignore[attr-defined]
    try:
        yield
    finally:
        os.urandom = real
        random._urandom = system  # type: ignore[attr-defined]


@dataclass
class Transcript:
    """Every request of the script and the answer it got."""

    client: TestClient
    steps: list[dict[str, Any]] = field(default_factory=list)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        key: str = ADMIN_KEY,
        expect: int | None = None,
        **params: Any,
    ) -> Any:
        headers = {"Authorization": f"Bearer {key}"}
        response = self.client.request(
            method, path, json=body, headers=headers, params=params or None
        )
        kind = response.headers.get("content-type", "")
        is_json = kind.startswith(("application/json", "application/problem+json"))
        answer = response.json() if is_json else response.text
        self.steps.append(
            {
                "request": {"method": method, "path": path, "params": params, "body": body},
                "status": response.status_code,
                "etag": response.headers.get("etag"),
                "body": answer,
            }
        )
        if expect is not None:
            assert response.status_code == expect, (path, response.status_code, answer)
        return answer


def play(client: TestClient, time: FixedTime, run_clock: Callable[[], None]) -> Transcript:
    """The day: configure the desk, work tickets through every command, run the SLA
    clock, erase a requester. Every command the API offers is used at least once."""
    t = Transcript(client)
    minute: Callable[[float], None] = lambda n: time.advance(minutes=n)  # noqa: E731

    # Configuration: queues, service levels, routing, escalation rules, people.
    t.call("POST", "/queues", {"name": "service-desk", "description": "first line"}, expect=201)
    t.call("POST", "/queues", {"name": "network"}, expect=201)
    office = {
        "name": "office",
        "timezone": "Europe/Berlin",
        "working_hours": {str(d): [["08:00", "18:00"]] for d in range(5)},
        "holidays": ["2026-03-20"],
        "reason": "Berlin office hours",
    }
    t.call("POST", "/sla/calendars", office, expect=200)
    minutes = {"P1": (15, 240), "P2": (60, 480), "P3": (240, 1440), "P4": (480, 2400)}
    policy = {
        "targets": {
            p: {"first_response_minutes": f, "resolution_minutes": r, "calendar": "office"}
            for p, (f, r) in minutes.items()
        },
        "at_risk_share": 0.5,
        "reason": "office desk",
    }
    t.call("POST", "/sla/policy", policy, expect=200)
    lead = t.call(
        "POST",
        "/agents",
        {"name": "Lena Lead", "role": "lead", "queues": ["service-desk", "network"]},
        expect=201,
    )
    ann = t.call(
        "POST",
        "/agents",
        {"name": "Ann", "email": "ann@example.com", "queues": ["service-desk"], "capacity": 2},
        expect=201,
    )
    bo = t.call("POST", "/agents", {"name": "Bo", "queues": ["network"]}, expect=201)
    ann_id, bo_id, lead_id = ann["aggregate_id"], bo["aggregate_id"], lead["aggregate_id"]
    ann_key, bo_key, lead_key = (x["extra"]["api_key"] for x in (ann, bo, lead))
    t.call("POST", f"/agents/{bo_id}", {"capacity": 3, "reason": "part time"}, expect=200)
    t.call("POST", "/queues/network/routing-policy", {"policy": "least_loaded"}, expect=200)
    rules = {
        "lead": f"agent:{lead_id}",
        "default": {
            "on_at_risk": {"kind": "hierarchical", "target_type": "manager"},
            "on_breach": {"kind": "functional", "target_type": "vendor", "target": "acme"},
        },
        "reason": "acme runs the VPN",
    }
    t.call("POST", "/queues/network/escalation-rules", rules, expect=200)
    t.call("POST", f"/agents/{ann_id}/availability", {"status": "available"}, key=ann_key)
    schedule = {
        "timezone": "Europe/Berlin",
        "working_hours": {str(d): [["08:00", "18:00"]] for d in range(5)},
        "on_call": [{"start": "2026-03-07T08:00:00Z", "end": "2026-03-07T20:00:00Z"}],
    }
    t.call("POST", f"/agents/{bo_id}/schedule", schedule, key=bo_key, expect=200)
    bob = t.call("POST", "/api-keys", {"name": "Bob", "role": "requester"}, expect=201)
    eve = t.call(
        "POST",
        "/api-keys",
        {"name": "Eve", "role": "requester", "principal_id": EVE_ID},
        expect=201,
    )
    bob_key, eve_key = bob["extra"]["api_key"], eve["extra"]["api_key"]
    auditor = t.call("POST", "/api-keys", {"name": "Audrey", "role": "auditor"}, expect=201)
    run_clock()

    # A requester's ticket worked end to end.
    minute(5)
    vpn = t.call(
        "POST",
        "/tickets",
        {
            "title": "VPN down",
            "description": "cannot connect since 08:00",
            "requester_name": "Bob Builder",
            "requester_email": "bob@example.com",
            "channel": "email",
            "category": "network",
            "impact": "high",
            "urgency": "medium",
            "queue": "service-desk",
        },
        key=bob_key,
        expect=201,
    )["aggregate_id"]
    run_clock()
    minute(2)
    t.call("POST", f"/tickets/{vpn}/triage", {"impact": "high", "urgency": "high"}, key=ann_key)
    run_clock()
    t.call("POST", f"/tickets/{vpn}/assign", {"agent_id": ann_id}, key=ann_key, expect=200)
    t.call("POST", f"/tickets/{vpn}/accept", key=ann_key, expect=200)
    t.call("POST", f"/tickets/{vpn}/start", key=ann_key, expect=200)
    t.call("POST", f"/tickets/{vpn}/comments", {"body": "Looking at it"}, key=ann_key)
    t.call(
        "POST",
        f"/tickets/{vpn}/comments",
        {"body": "token server looks unhealthy", "internal": True},
        key=ann_key,
    )
    run_clock()
    minute(3)
    t.call(
        "POST",
        f"/tickets/{vpn}/pend",
        {"reason": "waiting for logs", "waiting_on": "customer"},
        key=ann_key,
        expect=200,
    )
    run_clock()
    minute(30)
    t.call("POST", f"/tickets/{vpn}/comments", {"body": "logs attached"}, key=bob_key)
    t.call("POST", f"/tickets/{vpn}/resume", {"note": "logs received"}, key=ann_key, expect=200)
    run_clock()
    escalation = t.call(
        "POST",
        f"/tickets/{vpn}/escalations",
        {
            "kind": "functional",
            "target_type": "vendor",
            "target": "acme",
            "reason": "token server is acme's",
        },
        key=ann_key,
        expect=201,
    )["aggregate_id"]
    t.call("POST", f"/escalations/{escalation}/acknowledge", {"note": "on it"}, key=lead_key)
    t.call(
        "POST",
        f"/escalations/{escalation}/vendor-reference",
        {"vendor": "acme", "reference": "ACME-4711"},
        key=ann_key,
        expect=200,
    )
    minute(20)
    t.call(
        "POST",
        f"/escalations/{escalation}/resolve",
        {"note": "acme restarted the token server"},
        key=ann_key,
        expect=200,
    )
    t.call(
        "POST",
        f"/tickets/{vpn}/resolve",
        {"resolution_code": "fixed", "note": "token server restarted"},
        key=ann_key,
        expect=200,
    )
    run_clock()
    minute(60)
    t.call("POST", f"/tickets/{vpn}/reopen", {"reason": "down again"}, key=bob_key, expect=200)
    run_clock()
    t.call(
        "POST",
        f"/tickets/{vpn}/resolve",
        {"resolution_code": "fixed", "note": "second token server restarted"},
        key=ann_key,
        expect=200,
    )
    t.call(
        "POST",
        f"/tickets/{vpn}/satisfaction",
        {"score": 4, "comment": "quick, thanks"},
        key=bob_key,
        expect=200,
    )
    t.call("POST", f"/tickets/{vpn}/close", {"reason": "confirmed"}, key=lead_key, expect=200)
    run_clock()

    # Network tickets: routing, reassignment, links, merge, cancel, SLA breach.
    minute(10)
    outage = t.call(
        "POST",
        "/tickets",
        {
            "title": "Office switch dead",
            "description": "floor 3 has no network",
            "category": "network",
            "impact": "high",
            "urgency": "high",
            "queue": "network",
            "requester_id": EVE_ID,
        },
        key=lead_key,
        expect=201,
    )["aggregate_id"]
    dup = t.call(
        "POST",
        "/tickets",
        {
            "title": "No network on floor 3",
            "description": "same here",
            "category": "network",
            "impact": "medium",
            "urgency": "high",
        },
        key=eve_key,
        expect=201,
    )["aggregate_id"]
    run_clock()
    t.call("POST", f"/tickets/{dup}/assign", {"queue": "network"}, key=lead_key, expect=200)
    t.call(
        "POST",
        f"/tickets/{dup}/triage",
        {"impact": "medium", "urgency": "high", "priority": "P1", "reason": "same outage"},
        key=lead_key,
        expect=200,
    )
    t.call(
        "POST",
        f"/tickets/{dup}/links",
        {"ticket_id": outage, "relation": "duplicate_of"},
        key=lead_key,
        expect=200,
    )
    t.call(
        "POST",
        f"/tickets/{dup}/merge",
        {"into_ticket_id": outage, "reason": "one outage"},
        key=lead_key,
        expect=200,
    )
    t.call(
        "POST",
        f"/tickets/{outage}/assign",
        {"agent_id": bo_id, "reason": "Bo is on the floor"},
        key=lead_key,
        expect=200,
    )
    t.call("POST", f"/tickets/{outage}/release", {"reason": "Bo is on site"}, key=bo_key)
    t.call(
        "POST",
        f"/tickets/{outage}/assign",
        {"agent_id": lead_id, "reason": "I take it"},
        key=lead_key,
        expect=200,
    )
    run_clock()
    minute(10)
    run_clock()  # at risk
    minute(240)
    run_clock()  # breached
    t.call("GET", f"/tickets/{outage}/sla", key=lead_key, expect=200)
    manual = t.call(
        "POST",
        f"/tickets/{outage}/escalations",
        {
            "kind": "hierarchical",
            "target_type": "manager",
            "target": "head-of-it",
            "reason": "floor 3 idle",
            "level": 3,
        },
        key=lead_key,
        expect=201,
    )["aggregate_id"]
    t.call(
        "POST",
        f"/escalations/{manual}/withdraw",
        {"reason": "switch replaced"},
        key=lead_key,
        expect=200,
    )
    t.call(
        "POST",
        f"/tickets/{outage}/cancel",
        {"reason": "switch replaced by facilities"},
        key=lead_key,
        expect=200,
    )
    run_clock()

    # A refused command records nothing; a keyed retry answers the first result.
    t.call("POST", f"/tickets/{vpn}/start", key=ann_key, expect=409)
    stuck = t.call(
        "POST",
        "/tickets",
        {"title": "Printer", "description": "jam", "category": "hardware"}
        | {"impact": "low", "urgency": "low"},
        key=bob_key,
        expect=201,
    )["aggregate_id"]
    for _ in range(2):
        response = client.post(
            f"/tickets/{stuck}/comments",
            json={"body": "any news?"},
            headers={"Authorization": f"Bearer {bob_key}", "Idempotency-Key": "bob-1"},
        )
        t.steps.append({"keyed": response.status_code, "body": response.json()})
    run_clock()

    # Administration: a key revoked, a requester erased, a checkpoint.
    t.call(
        "POST",
        f"/api-keys/{auditor['extra']['credential_id']}/revoke",
        {"reason": "left the company"},
        expect=200,
    )
    t.call("POST", "/subjects/requester:eve-42/erase", {"legal_basis": "GDPR Art. 17"})

    # What readers see.
    for ticket in (vpn, outage, dup, stuck):
        t.call("GET", f"/tickets/{ticket}", expect=200)
    t.call("GET", f"/tickets/{vpn}", version=3, expect=200)
    t.call("GET", f"/tickets/{vpn}", as_of="2026-03-02T08:50:00Z", expect=200)
    t.call("GET", f"/escalations/{escalation}", expect=200)
    t.call("GET", f"/tickets/{vpn}/verify", expect=200)
    t.call("GET", "/agents", expect=200)
    t.call("GET", f"/agents/{ann_id}/availability", expect=200)
    t.call("GET", "/sla/policy", expect=200)
    t.call("GET", "/sla/calendars/office", expect=200)
    t.call("GET", "/queues/network/routing-policy", expect=200)
    t.call("GET", "/queues/network/escalation-rules", expect=200)
    t.call("GET", "/events", limit=1000, expect=200)
    return t


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
