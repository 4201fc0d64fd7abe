"""Stores written before envelope_version 2 still verify, by the rule they were written
with, and their streams continue under the new rule (README, "Audit integrity").

``tests/fixtures/envelopes-v1.jsonl`` is the scripted desk day exactly as the engine
wrote it before version 2 (the golden events file of then): insertion-ordered keys, no
``envelope_version``, hashes over Python's sorted compact ``json.dumps``. It is never
regenerated. The standalone script ``docs/examples/verify_chain.py`` (stdlib and
``rfc8785`` only) must agree with the engine's ``ticketing verify`` on every record.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.persistence import InfrastructureFactory, StoredEvent
from eventsourcing.utils import Environment

from engine.app.audit import verify_log
from engine.app.permissions import Principal
from engine.bootstrap import build_runtime
from engine.domain.commands.tickets import Comment
from engine.domain.directory import Role
from engine.integrity.chain import verify_envelopes
from engine.settings import Settings

ROOT = Path(__file__).parents[2]
V1 = ROOT / "tests" / "fixtures" / "envelopes-v1.jsonl"
SCRIPT = ROOT / "docs" / "examples" / "verify_chain.py"
ADMIN = Principal(id="admin", name="admin", role=Role.ADMIN)


def v1_lines() -> list[str]:
    return V1.read_text("utf-8").splitlines()


def run_script(lines: list[str], tmp_path: Path) -> tuple[int, dict[str, object]]:
    """The script in isolated mode (-I: no PYTHONPATH, no script directory on the path),
    from a directory without the engine: it cannot import the engine's code."""
    done = subprocess.run(
        [sys.executable, "-I", str(SCRIPT)],
        input="".join(line + "\n" for line in lines),
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def test_the_script_imports_only_the_standard_library_and_rfc8785() -> None:
    tree = ast.parse(SCRIPT.read_text("utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(str(node.module).split(".")[0])
    assert imported - {"rfc8785", "__future__"} <= set(sys.stdlib_module_names), imported


def test_envelopes_written_before_version_2_verify_by_their_rule(tmp_path: Path) -> None:
    lines = v1_lines()
    envelopes = [json.loads(line) for line in lines]
    assert not any("envelope_version" in e for e in envelopes)
    verifier = verify_envelopes(enumerate(envelopes, start=1))
    assert verifier.broken is None and verifier.count == len(lines)
    assert run_script(lines, tmp_path) == (
        0,
        {"ok": True, "events": len(lines), "streams": len(verifier.heads), "first_break": None},
    )


@pytest.mark.parametrize("how", ["alter", "claim version 2", "unknown version"])
def test_an_old_envelope_is_not_verified_by_another_rule(how: str, tmp_path: Path) -> None:
    lines = v1_lines()
    envelope = json.loads(lines[5])
    if how == "alter":
        envelope["actor"] = "someone else"
    else:  # Saying it is written by another rule breaks its hash (or names no rule).
        envelope["envelope_version"] = 2 if how == "claim version 2" else 3
    lines[5] = json.dumps(envelope)
    verifier = verify_envelopes((i, json.loads(line)) for i, line in enumerate(lines, start=1))
    assert verifier.broken is not None and verifier.broken.position == 6
    code, report = run_script(lines, tmp_path)
    assert code == 1 and report["first_break"]["line"] == 6  # type: ignore[index]


def test_a_sqlite_store_written_before_version_2_verifies_and_its_streams_go_on(
    tmp_path: Path,
) -> None:
    # Given: a SQLite store holding the old bytes exactly as they were written.
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(tmp_path / "events.sqlite"),
    }
    factory = InfrastructureFactory.construct(Environment(env=env))
    recorder = factory.application_recorder()
    envelopes = [json.loads(line) for line in v1_lines()]
    for line, e in zip(v1_lines(), envelopes, strict=True):
        recorder.insert_events(
            [StoredEvent(UUID(e["aggregate_id"]), e["aggregate_version"], e["type"], line.encode())]
        )
    factory.close()
    ends = ("TicketClosed", "TicketCancelled", "TicketMerged")
    ended = {e["aggregate_id"] for e in envelopes if e["type"] in ends}
    ticket = next(
        UUID(e["aggregate_id"])
        for e in envelopes
        if e["type"] == "TicketOpened" and e["aggregate_id"] not in ended
    )

    # When: the engine of now opens it, verifies it, and appends to an old stream.
    settings = Settings(data_dir=tmp_path, checkpoint_interval_s=0, projections="off")
    runtime = build_runtime(settings, start_views=False)
    try:
        assert verify_log(runtime.app.recorder).broken is None
        runtime.desk.send(ADMIN, Comment(ticket_id=ticket, body="still chained"))
        report = verify_log(runtime.app.recorder)
        states = [n.state for n in runtime.app.recorder.select_notifications(1, 10_000)]
    finally:
        runtime.close()

    # Then: the whole log verifies, old records by the old rule, the new one by RFC 8785,
    # chained to the last old hash; the standalone script agrees.
    assert report.broken is None and report.events == len(envelopes) + 1
    assert [s.decode() for s in states[: len(envelopes)]] == v1_lines()
    new = json.loads(states[-1])
    old_head = [e for e in envelopes if e["aggregate_id"] == str(ticket)][-1]
    assert new["envelope_version"] == 2 and new["prev_hash"] == old_head["hash"]
    code, script_report = run_script([s.decode() for s in states], tmp_path)
    assert code == 0 and script_report["events"] == len(envelopes) + 1
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "verify", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0 and json.loads(done.stdout)["ok"] is True, done.stderr
