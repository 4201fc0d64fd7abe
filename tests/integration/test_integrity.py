"""Tamper evidence and crypto-shredding, end to end on the embedded store.

Each test records a small service-desk history, then changes the SQLite file or an
exported bundle behind the engine's back, and checks that verification names the
first broken link (or the checkpoint that no longer matches).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest

from engine.app.audit import build_bundle, verify_bundle, verify_log
from engine.app.permissions import Principal
from engine.bootstrap import Runtime, build_runtime
from engine.domain.commands.directory import EraseSubject
from engine.domain.commands.tickets import Comment, OpenTicket, Triage
from engine.domain.directory import Role
from engine.domain.priority import Level
from engine.domain.ticket import Channel
from engine.settings import Settings

ADMIN = Principal(id="admin", name="admin", role=Role.ADMIN)
BOB = Principal(id="0a0a0a0a-0000-4000-8000-000000000b0b", name="bob", role=Role.REQUESTER)
EVE = Principal(id="0a0a0a0a-0000-4000-8000-000000000e7e", name="eve", role=Role.REQUESTER)
AUDITOR = Principal(id="0a0a0a0a-0000-4000-8000-000000000a22", name="ann", role=Role.AUDITOR)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


def _settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, checkpoint_interval_s=0, projections="off")


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = build_runtime(_settings(tmp_path), clock=Clock(), start_views=False)
    yield rt
    rt.close()


def open_ticket(rt: Runtime, who: Principal, title: str) -> UUID:
    cmd = OpenTicket(
        title=title,
        description=f"{title}: details only {who.name} wrote",
        requester_id=who.id,
        requester_email=f"{who.name}@example.com",
        channel=Channel.WEB,
        category="access",
        impact=Level.MEDIUM,
        urgency=Level.HIGH,
    )
    return rt.desk.send(who, cmd).aggregate_id


def history(rt: Runtime) -> tuple[UUID, UUID]:
    bob_ticket = open_ticket(rt, BOB, "Bob Smith cannot log in")
    rt.desk.send(BOB, Comment(ticket_id=bob_ticket, body="my number is 555-0100"))
    rt.desk.send(ADMIN, Triage(ticket_id=bob_ticket, impact=Level.HIGH, urgency=Level.HIGH))
    eve_ticket = open_ticket(rt, EVE, "Eve's printer jams")
    rt.desk.send(EVE, Comment(ticket_id=eve_ticket, body="third time this week"))
    return bob_ticket, eve_ticket


def db(rt: Runtime) -> sqlite3.Connection:
    return sqlite3.connect(rt.settings.data_dir / "events.sqlite", isolation_level=None)


def rows(conn: sqlite3.Connection, aggregate: UUID) -> list[tuple[int, int, bytes]]:
    return conn.execute(
        "SELECT rowid, originator_version, state FROM stored_events "
        "WHERE originator_id = ? ORDER BY originator_version",
        (aggregate.hex,),
    ).fetchall()


def test_an_untouched_log_verifies(runtime: Runtime) -> None:
    history(runtime)
    runtime.checkpoint()
    report = verify_log(runtime.app.recorder)
    assert report.ok, report.as_dict()
    assert report.checkpoints_verified == 1
    assert report.events == runtime.app.recorder.max_notification_id()


def test_an_altered_event_is_named(runtime: Runtime) -> None:
    bob_ticket, _ = history(runtime)
    with db(runtime) as conn:
        rowid, version, state = rows(conn, bob_ticket)[1]
        # Change the category stored in the triage event, leaving its hash as it was.
        envelope = json.loads(state)
        envelope["data"]["priority"] = "P4"
        conn.execute(
            "UPDATE stored_events SET state = ? WHERE rowid = ?",
            (json.dumps(envelope).encode(), rowid),
        )
    report = verify_log(runtime.app.recorder)
    assert report.broken is not None
    assert report.broken.aggregate_id == str(bob_ticket)
    assert report.broken.aggregate_version == version
    assert report.broken.position == rowid
    assert "content does not match its hash" in report.broken.problem
    assert report.broken.found == envelope["hash"] and report.broken.expected != envelope["hash"]


def test_a_deleted_event_in_the_middle_is_named(runtime: Runtime) -> None:
    bob_ticket, _ = history(runtime)
    with db(runtime) as conn:
        rowid, version, _ = rows(conn, bob_ticket)[1]
        conn.execute("DELETE FROM stored_events WHERE rowid = ?", (rowid,))
    report = verify_log(runtime.app.recorder)
    assert report.broken is not None
    assert report.broken.aggregate_id == str(bob_ticket)
    assert report.broken.problem == "events missing or out of order"
    assert report.broken.expected == str(version)


def test_reordered_events_are_detected(runtime: Runtime) -> None:
    bob_ticket, _ = history(runtime)
    with db(runtime) as conn:
        (r1, _, s1), (r2, _, s2) = rows(conn, bob_ticket)[1:3]
        # Swap the payloads of two consecutive events of the same stream.
        conn.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (s2, r1))
        conn.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (s1, r2))
    report = verify_log(runtime.app.recorder)
    assert report.broken is not None and report.broken.aggregate_id == str(bob_ticket)


def test_an_inserted_event_is_detected(runtime: Runtime) -> None:
    bob_ticket, _ = history(runtime)
    with db(runtime) as conn:
        last_rowid, last_version, state = rows(conn, bob_ticket)[-1]
        forged = json.loads(state)
        forged["aggregate_version"] = last_version + 1
        forged["data"]["priority"] = "P1"
        # A forger who does not recompute the chain leaves prev_hash pointing wrong.
        conn.execute(
            "INSERT INTO stored_events (originator_id, originator_version, topic, state) "
            "VALUES (?, ?, ?, ?)",
            (bob_ticket.hex, last_version + 1, forged["type"], json.dumps(forged).encode()),
        )
    report = verify_log(runtime.app.recorder)
    assert report.broken is not None
    assert report.broken.aggregate_version == last_version + 1
    assert report.broken.problem == "prev_hash does not link to the previous event"


def test_deleting_the_newest_events_is_caught_by_a_later_checkpoint(runtime: Runtime) -> None:
    bob_ticket, _ = history(runtime)
    runtime.checkpoint()
    with db(runtime) as conn:
        rowid, _, _ = rows(conn, bob_ticket)[-1]
        conn.execute("DELETE FROM stored_events WHERE rowid = ?", (rowid,))
    # The chain alone still links (the tail is simply shorter) ...
    report = verify_log(runtime.app.recorder)
    assert report.broken is None
    # ... but the signed checkpoint no longer matches the stream heads.
    assert report.problems and "do not match the signed root" in report.problems[0]


def test_a_forged_checkpoint_signature_is_detected(runtime: Runtime) -> None:
    history(runtime)
    runtime.checkpoint()
    report = verify_log(runtime.app.recorder, trusted_key="A" * 43 + "=")
    assert report.problems and "untrusted key" in report.problems[0]


def test_bundles_verify_offline_and_reveal_tampering(runtime: Runtime, tmp_path: Path) -> None:
    bob_ticket, _ = history(runtime)
    runtime.checkpoint()
    bundle = build_bundle(runtime.app, bob_ticket)
    assert verify_bundle(bundle, runtime.signer.public_key).ok

    # Alter one event in the exported file.
    altered = json.loads(json.dumps(bundle))
    altered["events"][1]["envelope"]["actor"] = "someone-else"
    assert verify_bundle(altered).broken is not None

    # Drop the newest event: the chain still links, the checkpoint proof does not.
    truncated = json.loads(json.dumps(bundle))
    truncated["events"].pop()
    result = verify_bundle(truncated)
    assert not result.ok and "not the one signed" in result.problems[0]

    # Reorder two events.
    reordered = json.loads(json.dumps(bundle))
    reordered["events"][1], reordered["events"][2] = reordered["events"][2], reordered["events"][1]
    assert verify_bundle(reordered).broken is not None

    # Insert a forged event.
    inserted = json.loads(json.dumps(bundle))
    forged = json.loads(json.dumps(inserted["events"][-1]))
    forged["envelope"]["aggregate_version"] += 1
    inserted["events"].append(forged)
    assert verify_bundle(inserted).broken is not None


def test_cli_verify_and_bundle_round_trip(runtime: Runtime, tmp_path: Path) -> None:
    bob_ticket, _ = history(runtime)
    runtime.checkpoint()
    data_dir = str(runtime.settings.data_dir)
    runtime.close()
    bundle_path = tmp_path / "bob.bundle.json"
    cli = [sys.executable, "-m", "cli.main"]
    done = subprocess.run([*cli, "verify", "--data-dir", data_dir], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ok"] is True
    done = subprocess.run(
        [
            *cli,
            "export",
            "--data-dir",
            data_dir,
            "--ticket",
            str(bob_ticket),
            "--bundle",
            str(bundle_path),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    done = subprocess.run(
        [*cli, "verify", "--bundle", str(bundle_path)], capture_output=True, text=True
    )
    assert done.returncode == 0 and json.loads(done.stdout)["checkpoints_verified"] == 1
    bundle = json.loads(bundle_path.read_text())
    bundle["events"][0]["envelope"]["data"]["category"] = "other"
    bundle_path.write_text(json.dumps(bundle))
    done = subprocess.run(
        [*cli, "verify", "--bundle", str(bundle_path)], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert json.loads(done.stdout)["first_break"]["aggregate_id"] == str(bob_ticket)
    done = subprocess.run(
        [*cli, "verify", "--bundle", str(tmp_path / "missing.json")], capture_output=True, text=True
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_erasure_makes_personal_data_unreadable_and_keeps_the_proof(runtime: Runtime) -> None:
    bob_ticket, eve_ticket = history(runtime)
    runtime.checkpoint()
    eve_before = runtime.desk.queries.ticket(ADMIN, eve_ticket)
    raw_before = [n.state for n in runtime.app.recorder.select_notifications(1, 10_000)]

    runtime.desk.send(
        ADMIN, EraseSubject(subject_id=BOB.id, legal_basis="GDPR Art. 17(1)(a), request 2026-114")
    )

    # The ticket still exists, its personal fields read as erased.
    bob = runtime.desk.queries.ticket(ADMIN, bob_ticket)
    assert (bob.title, bob.description, bob.requester_email) == ("[erased]",) * 3
    assert bob.priority == "P1" and bob.status == "new"
    # Nothing in the stored log was changed: the plaintext was never there.
    raw_after = [n.state for n in runtime.app.recorder.select_notifications(1, 10_000)]
    assert raw_after[: len(raw_before)] == raw_before
    assert not any(b"Bob Smith" in s or b"555-0100" in s for s in raw_after)
    # Every verification still passes.
    assert verify_log(runtime.app.recorder).ok
    assert runtime.desk.queries.verify_ticket(AUDITOR, bob_ticket)["ok"]
    bundle = build_bundle(runtime.app, bob_ticket)
    assert verify_bundle(bundle).ok
    # Everyone else is unchanged.
    assert (
        runtime.desk.queries.ticket(ADMIN, eve_ticket).title
        == eve_before.title
        == "Eve's printer jams"
    )
    # The erasure is recorded with its legal basis and actor.
    erased = [
        n
        for n in runtime.app.recorder.select_notifications(1, 10_000)
        if n.topic == "SubjectErased"
    ]
    envelope = json.loads(erased[0].state)
    assert envelope["actor"] == "admin" and "Art. 17" in envelope["data"]["legal_basis"]


def test_erasure_survives_a_restart_and_cannot_be_repeated(tmp_path: Path) -> None:
    rt = build_runtime(_settings(tmp_path), clock=Clock(), start_views=False)
    bob_ticket, _ = history(rt)
    rt.desk.send(ADMIN, EraseSubject(subject_id=BOB.id, legal_basis="request 7"))
    rt.close()
    rt = build_runtime(_settings(tmp_path), clock=Clock(), start_views=False)
    try:
        assert rt.desk.queries.ticket(ADMIN, bob_ticket).title == "[erased]"
        from engine.domain.base import RuleViolationError

        with pytest.raises(RuleViolationError, match="already erased"):
            rt.desk.send(ADMIN, EraseSubject(subject_id=BOB.id, legal_basis="again"))
        # New personal data of an erased subject is refused, not stored in clear.
        with pytest.raises(RuleViolationError, match="erased"):
            open_ticket(rt, BOB, "new problem")
    finally:
        rt.close()
