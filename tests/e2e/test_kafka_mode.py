"""`ticketing serve` on the Kafka store, over HTTP: the whole engine, not just the
recorder. Runs on the test broker, or on Apache Kafka given KAFKA_BOOTSTRAP_SERVERS
(except the outage test, which needs a broker it can cut off)."""

from __future__ import annotations

import shutil
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import (
    ServerProcess,
    assert_problem,
    at_once,
    make_cast,
    read_events,
    start_server,
)

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]
ADMIN_KEY = "kafka-mode-admin-key-0123456789"


def kafka_env(bootstrap: str, topic: str, key_store: Path) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_TOPIC": topic,
        # Several processes on one topic share the data subjects' keys.
        "TICKETING_KEY_STORE": str(key_store),
    }


@pytest.fixture
def topic() -> str:
    return f"ticketing.e2e.{uuid.uuid4().hex[:10]}"


def serve(tmp_path: Path, name: str, env: dict[str, str]) -> ServerProcess:
    return start_server(tmp_path / name / "data", tmp_path / name / "logs", ADMIN_KEY, env)


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()


def test_a_ticket_lives_on_the_topic_and_survives_losing_the_local_cache(
    kafka_bootstrap: str, topic: str, tmp_path: Path, servers: list[ServerProcess]
) -> None:
    env = kafka_env(kafka_bootstrap, topic, tmp_path / "keys.sqlite")
    server = serve(tmp_path, "one", env)
    servers.append(server)
    assert server.client().get("/health").json()["store"] == "kafka"
    cast = make_cast(server, ADMIN_KEY)
    ticket = cast.requester.open_ticket(queue=cast.queue)
    assert cast.lead.post(f"/tickets/{ticket}/assign", {"agent_id": cast.agent.agent_id}).is_success
    assert cast.agent.post(f"/tickets/{ticket}/start").is_success
    done = cast.agent.post(f"/tickets/{ticket}/resolve", {"resolution_code": "fixed", "note": "ok"})
    assert done.status_code == 200, done.text
    # The views follow the topic: read-your-writes through min_position.
    page = cast.lead.get(f"/queues/{cast.queue}?min_position={done.json()['position']}")
    assert page.status_code == 200 and page.json()["items"] == []
    before_events = read_events(cast.admin.http)
    before_ticket = cast.admin.get(f"/tickets/{ticket}").json()

    # Stop, delete every local file but the key store, start again: all rebuilt.
    server.stop_gracefully()
    shutil.rmtree(server.data_dir)
    again = serve(tmp_path, "one", env)
    servers.append(again)
    admin = httpx.Client(base_url=again.base_url, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert read_events(admin) == before_events
    assert admin.get(f"/tickets/{ticket}").json() == before_ticket
    head = before_events[-1]["position"]
    assert admin.get(f"/tickets/{ticket}/history?min_position={head}").status_code == 200
    assert admin.get(f"/tickets/{ticket}/verify").json()["ok"] is True


def test_two_servers_on_one_topic_never_record_a_version_twice(
    kafka_bootstrap: str, topic: str, tmp_path: Path, servers: list[ServerProcess]
) -> None:
    env = kafka_env(kafka_bootstrap, topic, tmp_path / "keys.sqlite")
    first = serve(tmp_path, "first", env)
    servers.append(first)
    cast = make_cast(first, ADMIN_KEY)
    second = serve(tmp_path, "second", env)
    servers.append(second)
    other = cast.on(second)
    tickets = [cast.requester.open_ticket(queue=cast.queue) for _ in range(3)]

    # Both servers comment on the same tickets at the same moment, many times.
    codes: Counter[int] = Counter()
    for _ in range(8):
        for ticket in tickets:
            head = first.client().get("/health").json()["position"]
            _wait_position(second, head)
            responses = at_once(
                [
                    lambda t=ticket: cast.agent.post(
                        f"/tickets/{t}/comments", {"body": "from one"}
                    ),
                    lambda t=ticket: other.agent.post(
                        f"/tickets/{t}/comments", {"body": "from two"}
                    ),
                ]
            )
            for r in responses:
                codes[r.status_code] += 1
                if r.status_code == 409:
                    assert_problem(r, 409)
    assert set(codes) <= {200, 409}, codes
    assert codes[200] >= 24  # every round records at least one of the two

    # Both servers read the same log, with contiguous versions per aggregate.
    _wait_position(second, first.client().get("/health").json()["position"])
    events_one, events_two = read_events(cast.admin.http), read_events(other.admin.http)
    assert events_one == events_two
    versions: dict[str, list[int]] = {}
    for item in events_one:
        event = item["event"]
        versions.setdefault(event["aggregate_id"], []).append(event["aggregate_version"])
    for aggregate, seen in versions.items():
        assert seen == list(range(1, len(seen) + 1)), aggregate
    comments = [i for i in events_one if i["event"]["type"] == "TicketCommented"]
    assert len(comments) == codes[200]


def _wait_position(server: ServerProcess, position: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while server.client().get("/health").json()["position"] < position:
        assert time.monotonic() < deadline, f"{server.base_url} did not reach {position}"
        time.sleep(0.02)


def test_broker_outage_answers_503_and_the_engine_recovers_by_itself(
    controlled_broker: object, topic: str, tmp_path: Path, servers: list[ServerProcess]
) -> None:
    from tests.support.kafka_broker import ControlledBroker

    assert isinstance(controlled_broker, ControlledBroker)
    env = kafka_env(controlled_broker.bootstrap, topic, tmp_path / "keys.sqlite")
    server = serve(tmp_path, "one", env)
    servers.append(server)
    cast = make_cast(server, ADMIN_KEY)
    ticket = cast.requester.open_ticket(queue=cast.queue)
    before = read_events(cast.admin.http)

    controlled_broker.cut()
    started = time.monotonic()
    refused = cast.requester.post(f"/tickets/{ticket}/comments", {"body": "anyone there?"})
    assert_problem(refused, 503)
    assert time.monotonic() - started < 15
    # Queries keep answering from the local cache.
    _r = cast.admin.get(f"/tickets/{ticket}")
    assert _r.status_code == 200, _r.text
    assert read_events(cast.admin.http) == before

    controlled_broker.restore()
    deadline = time.monotonic() + 30
    while True:
        retry = cast.requester.post(f"/tickets/{ticket}/comments", {"body": "back again"})
        if retry.status_code == 200:
            break
        assert retry.status_code == 503 and time.monotonic() < deadline, retry.text
        time.sleep(0.5)
    after = read_events(cast.admin.http)
    # Nothing half-written from the outage appears: only the successful comment is new.
    new = [i["event"]["type"] for i in after[len(before) :]]
    assert after[: len(before)] == before and new == ["TicketCommented"]


def test_a_transaction_left_open_by_a_killed_writer_does_not_stop_a_start(
    kafka_bootstrap: str, topic: str, tmp_path: Path, servers: list[ServerProcess]
) -> None:
    """Regression: a writer SIGKILLed between send and commit leaves its transaction
    open, and a read_committed reader stops at the last stable offset, below the high
    watermark, until the next writer fences that transaction. A start waited for the
    cache to reach the high watermark, so it hung (until the broker's transaction
    timeout, if it has one), and with it every restart after such a kill."""
    from kafka import KafkaProducer

    env = kafka_env(kafka_bootstrap, topic, tmp_path / "keys.sqlite")
    first = serve(tmp_path, "first", env)
    servers.append(first)
    cast = make_cast(first, ADMIN_KEY)
    ticket = cast.requester.open_ticket(queue=cast.queue)
    before = read_events(cast.admin.http)
    first.stop_gracefully()  # resigns the writer role

    # A killed writer's open transaction, on the writer role's transactional id.
    zombie = KafkaProducer(
        bootstrap_servers=kafka_bootstrap,
        transactional_id=f"{topic}.writer",
        enable_idempotence=True,
        acks="all",
        transaction_timeout_ms=300_000,  # longer than the test: only a fence ends it
    )
    try:
        zombie.init_transactions()
        zombie.begin_transaction()
        zombie.send(topic, key=b"never", value=b"committed", partition=0)
        zombie.flush(timeout=10)

        # Check a server with its cache kept, and one with a fresh cache, both start
        # (STARTUP_TIMEOUT_S) and write: the new writer fences the open transaction.
        again = serve(tmp_path, "first", env)
        servers.append(again)
        admin = again.client(ADMIN_KEY)
        deadline = time.monotonic() + 30
        while True:
            r = admin.post(f"/tickets/{ticket}/comments", json={"body": "after the kill"})
            if r.status_code == 200:
                break
            assert r.status_code == 503 and time.monotonic() < deadline, r.text
            time.sleep(0.2)
        fresh = serve(tmp_path, "fresh", env)
        servers.append(fresh)
        _wait_position(fresh, r.json()["position"])
        after = read_events(fresh.client(ADMIN_KEY))
        assert after == read_events(admin)
        new = [i["event"]["type"] for i in after[len(before) :]]
        # The open transaction's record is no event: Apache Kafka hides it once
        # aborted; Tansu shows it (it leaks aborted records), and the cache skips it.
        assert after[: len(before)] == before and new == ["TicketCommented"], new
    finally:
        zombie.close(timeout=0)


def test_metrics_name_the_one_writer_and_each_cache_s_lag(
    kafka_bootstrap: str, topic: str, tmp_path: Path, servers: list[ServerProcess]
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    env = kafka_env(kafka_bootstrap, topic, tmp_path / "keys.sqlite")
    first = serve(tmp_path, "first", env)
    servers.append(first)
    cast = make_cast(first, ADMIN_KEY)
    second = serve(tmp_path, "second", env)
    servers.append(second)
    cast.requester.open_ticket(queue=cast.queue)
    _wait_position(second, first.client().get("/health").json()["position"])

    def scrape(server: ServerProcess) -> dict[str, float]:
        answer = server.client(ADMIN_KEY).get("/metrics")
        assert answer.status_code == 200, answer.text
        return {
            s.name: s.value
            for family in text_string_to_metric_families(answer.text)
            for s in family.samples
            if s.name.startswith("ticketing_kafka_")
        }

    one, two = scrape(first), scrape(second)
    assert sorted([one["ticketing_kafka_writer"], two["ticketing_kafka_writer"]]) == [0.0, 1.0]
    assert one["ticketing_kafka_lease_epoch"] == two["ticketing_kafka_lease_epoch"] >= 1
    assert one["ticketing_kafka_cache_events"] == two["ticketing_kafka_cache_events"] > 0
    for figures in (one, two):
        assert figures["ticketing_kafka_tailer_lag_records"] >= 0  # NaN until seen fails
