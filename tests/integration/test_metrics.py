"""``GET /metrics`` (issue #14 item 4): Prometheus' own parser reads it; requests are
timed by route template, commands counted by outcome, appends measured, and each
follower's lag reported; only auditors, admins and the scrape token may read it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from api.app import create_app
from engine.bootstrap import Runtime, build_runtime
from engine.settings import Settings
from tests.support.desk import TICKET

ADMIN_KEY = "metrics-admin-key-0123456789abcdef"
SCRAPE_TOKEN = "metrics-scrape-token-0123456789ab"


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(
        data_dir=tmp_path, bootstrap_admin_key=ADMIN_KEY, metrics_token=SCRAPE_TOKEN
    )
    rt = build_runtime(settings)
    yield rt
    rt.close()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as c:
        yield c


def scrape(client: TestClient, key: str = ADMIN_KEY) -> dict[str, list[Sample]]:
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def value(samples: dict[str, list[Sample]], name: str, **labels: str) -> float:
    found = [s.value for s in samples.get(name, []) if labels.items() <= s.labels.items()]
    assert len(found) == 1, (name, labels, samples.get(name))
    return float(found[0])


def test_requests_commands_and_appends_are_counted(client: TestClient) -> None:
    first = client.post("/tickets", json=TICKET).json()
    client.post("/tickets", json=TICKET, headers={"Idempotency-Key": "k1"})
    client.post("/tickets", json=TICKET, headers={"Idempotency-Key": "k1"})  # a replay
    ticket = first["aggregate_id"]
    assert client.get(f"/tickets/{ticket}").status_code == 200
    unknown = "6f1d7f3e-93a4-4c55-9d2e-5a4e0c1b7a10"
    assert client.post(f"/tickets/{unknown}/comments", json={"body": "hi"}).status_code == 404

    samples = scrape(client)
    requests = "ticketing_http_request_duration_seconds_count"
    assert value(samples, requests, method="POST", route="/tickets", status="201") == 3
    assert value(samples, requests, method="GET", route="/tickets/{ticket_id}", status="200") == 1
    assert not any(ticket in str(s.labels) for s in samples[requests])  # templates, not ids
    commands = "ticketing_commands_total"
    assert value(samples, commands, command="OpenTicket", outcome="recorded") == 2
    assert value(samples, commands, command="OpenTicket", outcome="replayed") == 1
    assert value(samples, commands, command="Comment", outcome="not_found") == 1
    # The bootstrap append and the two recorded opens, each one commit.
    assert value(samples, "ticketing_append_events_count") >= 3
    assert value(samples, "ticketing_append_seconds_count") >= 3
    # Group commit: every append was in some store transaction (one at a time here).
    assert value(samples, "ticketing_commit_appends_sum") >= 3


def test_each_follower_reports_its_lag_and_is_current_once_it_caught_up(
    client: TestClient, runtime: Runtime
) -> None:
    position = client.post("/tickets", json=TICKET).json()["position"]
    assert runtime.views is not None
    runtime.views.wait(position, timeout=10)
    samples = scrape(client)
    assert value(samples, "ticketing_log_head_position") >= position
    for view in runtime.views.positions():
        assert value(samples, "ticketing_projection_lag_events", view=view) == 0
        assert value(samples, "ticketing_projection_lag_seconds", view=view) == 0
    assert value(samples, "ticketing_sla_clock_lag_events", process="sla_clock") >= 0


def test_a_view_behind_the_log_reports_events_and_seconds(
    client: TestClient, runtime: Runtime
) -> None:
    assert runtime.views is not None
    runtime.views.stop()  # the views stop following; the log goes on
    for _ in range(3):
        assert client.post("/tickets", json=TICKET).status_code == 201
    samples = scrape(client)
    head = value(samples, "ticketing_log_head_position")
    for view, position in runtime.views.positions().items():
        assert value(samples, "ticketing_projection_lag_events", view=view) == head - position
        assert value(samples, "ticketing_projection_lag_events", view=view) >= 3
        assert value(samples, "ticketing_projection_lag_seconds", view=view) > 0


def key_for(client: TestClient, role: str) -> str:
    if role in ("agent", "lead"):
        answer = client.post("/agents", json={"name": f"a {role}", "role": role})
    else:
        answer = client.post("/api-keys", json={"name": f"a {role}", "role": role})
    assert answer.status_code == 201, answer.text
    key: str = answer.json()["extra"]["api_key"]
    return key


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("admin", 200),
        ("auditor", 200),
        ("token", 200),
        ("requester", 403),
        ("agent", 403),
        ("lead", 403),
    ],
)
def test_who_may_scrape(client: TestClient, who: str, status: int) -> None:
    key = {"admin": ADMIN_KEY, "token": SCRAPE_TOKEN}.get(who) or key_for(client, who)
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == status, answer.text


@pytest.mark.parametrize("authorization", [None, "Bearer not-the-token-0123456789abcdef"])
def test_no_key_or_a_wrong_token_is_401(client: TestClient, authorization: Any) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    answer = TestClient(client.app).get("/metrics", headers=headers)
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_a_short_scrape_token_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="TICKETING_METRICS_TOKEN"):
        Settings(data_dir=tmp_path, metrics_token="short")
