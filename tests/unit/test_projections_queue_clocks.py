"""The queue view keeps each ticket's parsed SLA clock between events instead of parsing
its stored text again: the rows are byte for byte those of parsing every time."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from test_projections_queue import HIGH, LOW, MEDIUM, World

from engine.domain import sla
from engine.projections.queue.view import QueueProjection


def rows(directory: Path) -> list[tuple[object, ...]]:
    """Every row of the queue view's tickets and clocks, as stored (personal fields are
    kept sealed, with each desk's own keys and nonces: compared as sealed)."""
    (path,) = directory.rglob("queue.*.sqlite")
    with sqlite3.connect(path) as db:
        tickets = db.execute("SELECT * FROM tickets ORDER BY seq").fetchall()
        clocks = db.execute("SELECT * FROM sla_clocks ORDER BY ticket_id").fetchall()
    return [tuple(map(_sealed_as_one, row)) for row in [*tickets, *clocks]]


def _sealed_as_one(value: object) -> object:
    return "(sealed)" if isinstance(value, str) and value.startswith('{"$enc":') else value


def run_desk(w: World) -> None:
    """Tickets whose clocks start, run, pause, resume, fall due and stop, with the view
    catching up after every step (so clocks are kept across batches)."""
    ids = [w.open(name, impact, urgency) for name, impact, urgency in (
        ("a", HIGH, HIGH), ("b", HIGH, MEDIUM), ("c", LOW, LOW))]  # fmt: skip
    w.sync()
    for tid in ids:
        w.desk.assign(tid, w.ann)
        w.desk.accept(tid)
        w.desk.start(tid)
        w.sync()
    w.desk.pend(ids[1])
    w.desk.advance(30)
    w.sync()
    w.desk.resume(ids[1])
    w.desk.advance(8 * 60)
    w.sync()
    w.desk.resolve(ids[0])
    w.sync()


def test_kept_clocks_give_the_rows_of_parsing_each_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[str] = []
    validate = sla.SlaClock.model_validate_json

    def parse(text: str) -> sla.SlaClock:
        parsed.append(text)
        return validate(text)

    monkeypatch.setattr(sla.SlaClock, "model_validate_json", parse)
    kept = World(tmp_path / "kept", sla=True)
    run_desk(kept)
    kept.views.close()
    kept_parses, parsed[:] = len(parsed), []
    # The same desk again, with the view parsing each clock from its row every time.
    monkeypatch.setattr(QueueProjection, "_keep_parsed", lambda *args: None)
    fresh = World(tmp_path / "fresh", sla=True)
    run_desk(fresh)
    fresh.views.close()
    assert kept_parses < len(parsed)  # the clocks were kept, and parsed in the comparison
    kept_rows, fresh_rows = rows(tmp_path / "kept"), rows(tmp_path / "fresh")
    assert len(kept_rows) == len(fresh_rows) > 3
    # Ids and times come from the desk's seed and pinned clock: the rows must be equal.
    assert kept_rows == fresh_rows
