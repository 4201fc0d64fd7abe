"""Servers on a topic that lost its history never serve a mixture (#13 item 2).

Two ``ticketing serve`` processes fill a topic; they are paused (SIGSTOP) while the
broker loses its data and a third server refills the topic with another history; then
they continue. Both report ``diverged`` on ``GET /health`` with the offsets, and answer
every command and read (``GET /events``, ``GET /tickets/{id}``, the views) with a 503
problem naming the cause and the fix, never a 500 and never the other history. After
``ticketing cache rebuild``, a server serves the topic as it is now.

The broker's data is wiped by restarting it: the local test broker only (memory
storage); skipped on an external broker, which is not ours to restart.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import (
    REPO_ROOT,
    ServerProcess,
    assert_problem,
    make_cast,
    read_events,
    server_env,
    start_server,
)
from tests.support.kafka_broker import ControlledBroker

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]
ADMIN_KEY = "kafka-diverged-admin-key-0123456789"
REBUILD = "ticketing cache rebuild"
METRICS_TOKEN = "kafka-diverged-metrics-token-0123456789"


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        if server.proc.poll() is None:
            os.kill(server.pid, signal.SIGCONT)  # a paused process cannot act on SIGTERM
        server.stop()


def test_paused_servers_on_a_refilled_topic_stop_serving_until_the_cache_is_rebuilt(
    controlled_broker: ControlledBroker, tmp_path: Path, servers: list[ServerProcess]
) -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": controlled_broker.bootstrap,
        "KAFKA_TOPIC": f"ticketing.e2e.{uuid.uuid4().hex[:10]}",
        "TICKETING_KEY_STORE": str(tmp_path / "keys.sqlite"),
        "TICKETING_METRICS_TOKEN": METRICS_TOKEN,
    }

    def serve(name: str) -> ServerProcess:
        server = start_server(tmp_path / name / "data", tmp_path / name / "logs", ADMIN_KEY, env)
        servers.append(server)
        return server

    # 1. Two servers fill the topic.
    first, second = serve("first"), serve("second")
    cast = make_cast(first, ADMIN_KEY)
    old_tickets = [cast.requester.open_ticket(queue=cast.queue) for _ in range(3)]
    for ticket in old_tickets:
        assert cast.agent.post(f"/tickets/{ticket}/comments", {"body": "old"}).is_success
    before = read_events(cast.admin.http)
    other = cast.on(second)
    deadline = time.monotonic() + 20
    while read_events(other.admin.http) != before:
        assert time.monotonic() < deadline, "the second server did not catch up"
        time.sleep(0.05)

    # 2. Paused while the broker loses its data and a third server refills the topic
    #    with another history, longer than the old one.
    for server in (first, second):
        os.kill(server.pid, signal.SIGSTOP)
    controlled_broker.restart()
    third = serve("third")
    new_cast = make_cast(third, ADMIN_KEY)
    new_tickets = [new_cast.requester.open_ticket(queue=new_cast.queue) for _ in range(6)]
    for ticket in new_tickets:
        assert new_cast.agent.post(f"/tickets/{ticket}/comments", {"body": "new"}).is_success
    after = read_events(new_cast.admin.http)
    assert len(after) > len(before)
    third.stop_gracefully()

    # 3. They continue: each reports the divergence, with the offsets...
    for server in (first, second):
        os.kill(server.pid, signal.SIGCONT)
    for server, people in ((first, cast), (second, other)):
        deadline = time.monotonic() + 30
        while True:
            health = server.client().get("/health")
            if health.status_code == 503:
                break
            assert health.status_code == 200 and time.monotonic() < deadline, health.text
            # Until it has noticed, it serves its own history only: never a mixture.
            seen = people.admin.get("/events", params={"after": 0, "limit": 1000})
            if seen.status_code == 200:
                assert len(seen.text.splitlines()) == len(before)
            time.sleep(0.05)
        body = health.json()
        assert health.headers["content-type"].startswith("application/problem+json")
        assert (body["status"], body["health"]) == (503, "diverged"), body
        diverged = body["diverged"]
        assert isinstance(diverged["offset"], int) and diverged["cached_up_to"] > 0, body
        assert diverged["topic"] == env["KAFKA_TOPIC"], body
        assert "lost its data" in diverged["cause"] and REBUILD in diverged["fix"], body

        # ...and refuses every command and read with the cause and the fix.
        ticket = old_tickets[0]
        for response in (
            people.agent.post(f"/tickets/{ticket}/comments", {"body": "after"}),
            people.requester.post("/tickets", {"title": "t", "description": "d"}),
            people.admin.get(f"/tickets/{ticket}"),
            people.admin.get(f"/tickets/{new_tickets[0]}"),
            people.admin.get("/events", params={"after": 0}),
            people.lead.get(f"/queues/{cast.queue}"),
            people.admin.get(f"/tickets/{ticket}/history"),
        ):
            problem = assert_problem(response, 503)
            assert "diverged" in problem["detail"] and REBUILD in problem["detail"], problem
            assert problem["diverged"]["offset"] == diverged["offset"], problem
        # The metrics still answer, and say so.
        scraped = server.client(METRICS_TOKEN).get("/metrics")
        assert scraped.status_code == 200, scraped.text
        assert "ticketing_kafka_diverged 1.0" in scraped.text

    # 4. The fix, on the first server: stopped, cache rebuilt from the topic as it is now.
    first.stop()
    rebuilt = subprocess.run(
        [sys.executable, "-m", "cli.main", "cache", "rebuild", "--data-dir", str(first.data_dir)],
        cwd=REPO_ROOT,
        env=server_env(ADMIN_KEY, env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "cache of " in rebuilt.stderr  # the progress line
    assert f"cache rebuilt from topic {env['KAFKA_TOPIC']!r}" in rebuilt.stderr, rebuilt.stderr
    cache_mode = (first.data_dir / "kafka-cache.sqlite").stat().st_mode
    assert stat.S_IMODE(cache_mode) & 0o077 == 0, oct(cache_mode)  # as private as before
    again = start_server(first.data_dir, tmp_path / "first" / "logs", ADMIN_KEY, env)
    servers.append(again)
    admin = httpx.Client(base_url=again.base_url, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert again.client().get("/health").json()["status"] == "ok"
    assert read_events(admin) == after
    assert admin.get(f"/tickets/{new_tickets[0]}").status_code == 200
    assert_problem(admin.get(f"/tickets/{old_tickets[0]}"), 404)
    # Its views were rebuilt too: they hold the new history only.
    queue = admin.get(f"/queues/{new_cast.queue}", params={"min_position": after[-1]["position"]})
    assert queue.status_code == 200, queue.text
    assert {item["ticket_id"] for item in queue.json()["items"]} <= set(new_tickets)
