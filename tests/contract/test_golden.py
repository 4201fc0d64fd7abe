"""The wire contract, byte for byte: the served OpenAPI document, every event JSON
Schema, the README's generated tables, and the exact envelopes (in order) and answers of
a scripted desk day on SQLite and on the Kafka store, plus a seeded simulation run.

A change here is a change that clients see. Regenerate on purpose with
``GOLDEN_UPDATE=1 pytest tests/contract/test_golden.py`` and say why in the commit.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from cli.catalogue import events_table, roles_table, visibility_table
from engine.bootstrap import Runtime, build_runtime
from engine.processes.sla_clock import SlaClockProcess
from engine.settings import Settings
from tests.golden.scenario import (
    ADMIN_KEY,
    GOLDEN,
    START,
    FixedTime,
    dumps,
    play,
    seeded_randomness,
)

UPDATE = os.environ.get("GOLDEN_UPDATE") == "1"


def check(name: str, text: str) -> None:
    """Compare ``text`` with the committed golden file (or write it, on purpose)."""
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    committed = path.read_text(encoding="utf-8")
    assert text == committed, f"tests/golden/{name} differs: a wire contract change"


@pytest.fixture
def sqlite_runtime(tmp_path: Path) -> Iterator[Runtime]:
    time = FixedTime(START)
    settings = Settings(data_dir=tmp_path, bootstrap_admin_key=ADMIN_KEY)
    with seeded_randomness(1):
        runtime = build_runtime(settings, clock=time, start_views=False)
    yield runtime
    runtime.close()


def envelopes(runtime: Runtime) -> list[str]:
    """Every recorded event's stored bytes, in notification order."""
    out: list[str] = []
    start = 1
    while True:
        batch = runtime.app.recorder.select_notifications(start, 500)
        out += [n.state.decode("utf-8") for n in batch]
        if len(batch) < 500:
            return out
        start = batch[-1].id + 1


def run_scenario(runtime: Runtime) -> tuple[list[dict[str, Any]], list[str]]:
    time = runtime.clock
    assert isinstance(time, FixedTime)
    clock = SlaClockProcess(runtime.app, time)
    with seeded_randomness(2), TestClient(create_app(runtime)) as client:
        transcript = play(client, time, lambda: clock.run_once())
        return transcript.steps, envelopes(runtime)


def without_positions(value: Any) -> Any:
    """Notification ids are store-specific (Kafka offsets count transaction markers)."""
    if isinstance(value, dict):
        return {
            k: "<position>" if k in ("position", "after", "next_after") else without_positions(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [without_positions(v) for v in value]
    if isinstance(value, str) and value.startswith("{") and '"position"' in value:
        return [without_positions(json.loads(line)) for line in value.splitlines()]
    return value


def test_openapi_document(sqlite_runtime: Runtime) -> None:
    document = create_app(sqlite_runtime).openapi()
    check("openapi.json", json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def test_event_schemas_as_served(sqlite_runtime: Runtime) -> None:
    with TestClient(create_app(sqlite_runtime)) as client:
        auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
        index = client.get("/schemas", headers=auth).json()
        served = {"index": index}
        names = (
            sorted(index)
            if isinstance(index, dict)
            else sorted(entry if isinstance(entry, str) else entry["type"] for entry in index)
        )
        for name in names:
            response = client.get(f"/schemas/{name}", headers=auth)
            assert response.status_code == 200, name
            served[name] = response.json()
    check("schemas.json", json.dumps(served, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def test_readme_tables() -> None:
    tables = (roles_table(), visibility_table(), events_table())
    check("readme-tables.md", "\n\n".join(tables) + "\n")


def test_scripted_day_on_sqlite(sqlite_runtime: Runtime) -> None:
    steps, events = run_scenario(sqlite_runtime)
    check("transcript.jsonl", "".join(dumps(step) + "\n" for step in steps))
    check("events.jsonl", "".join(e + "\n" for e in events))


@pytest.mark.kafka
def test_scripted_day_on_kafka(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        bootstrap_admin_key=ADMIN_KEY,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic=f"ticketing.golden.{uuid.uuid4().hex[:10]}",
    )
    with seeded_randomness(1):
        runtime = build_runtime(settings, clock=FixedTime(START), start_views=False)
    try:
        steps, events = run_scenario(runtime)
    finally:
        runtime.close()
    # The same bytes as on SQLite, the same answers but for the store's positions.
    assert "".join(e + "\n" for e in events) == (GOLDEN / "events.jsonl").read_text("utf-8")
    golden = [json.loads(line) for line in (GOLDEN / "transcript.jsonl").read_text().splitlines()]
    assert without_positions(steps) == without_positions(golden)


def test_seeded_simulation(tmp_path: Path) -> None:
    from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

    from tests.support.simulation import Desk

    datastore = SQLiteDatastore(str(tmp_path / "sim.sqlite"))
    recorder = SQLiteApplicationRecorder(datastore)
    recorder.create_table()
    desk = Desk(recorder, datetime(2026, 3, 2, 9, 0, tzinfo=UTC), seed=7, sla=True)
    desk.setup()
    for step in range(400):
        try:
            desk.play(desk.rng.randrange(10_000), desk.rng.randrange(10_000))
        except Exception as refused:  # a refused command records nothing
            assert type(refused).__module__.startswith("engine.domain"), refused
        desk.advance(minutes=7 + step % 30)
    desk.flush()
    stored = []
    start = 1
    while batch := recorder.select_notifications(start, 500):
        stored += [n.state.decode("utf-8") for n in batch]
        start = batch[-1].id + 1
    check("simulation.jsonl", "".join(s + "\n" for s in stored))
