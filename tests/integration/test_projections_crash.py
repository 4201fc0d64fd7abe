"""Crash safety: kill the process that keeps the views (SIGKILL) part way through the
log; after a restart the views equal a fresh rebuild, event for event."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

from engine.domain.base import DomainError
from engine.projections import VIEW_NAMES, Views
from tests.support.simulation import Desk

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

# The projector process: keep the views current and print their least position.
PROJECTOR = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore
    from engine.projections import Views

    recorder = SQLiteApplicationRecorder(SQLiteDatastore(sys.argv[1]))
    batch = int(sys.argv[3])
    views = Views(recorder, Path(sys.argv[2]), batch_size=batch, bulk_batch_size=batch)
    views.start()
    while True:
        print(min(views.positions().values()), flush=True)
        time.sleep(0.002)
    """
)


# The rebuilder process: rebuild every view, slowly, printing each position it reads.
REBUILDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore
    from engine.projections import Views
    from engine.projections.kit import runner

    recorder = SQLiteApplicationRecorder(SQLiteDatastore(sys.argv[1]))
    views = Views(recorder, Path(sys.argv[2]), bulk_batch_size=5, cache_rows=3)
    apply_batch = runner.apply_batch

    def slowly(projections, start, batch):
        apply_batch(projections, start, batch)
        print(batch[1], flush=True)
        time.sleep(0.002)

    runner.apply_batch = slowly
    views.rebuild()
    """
)


def play(desk: Desk, commands: int, offset: int) -> None:
    for i in range(commands):
        desk.advance(23)
        try:
            desk.play((i + offset) * 7919 % 1000, (i + offset) * 104729 % 1000)
        except DomainError:
            continue
    desk.flush()


def dumps(views: Views) -> dict[str, Any]:
    return {name: views._live[name].view.dump() for name in VIEW_NAMES}


def kill_part_way(log: Path, data: Path, batch: int, after: int) -> int:
    """Start a projector, SIGKILL it once its views passed ``after``; its last position."""
    process = subprocess.Popen(
        [sys.executable, "-c", PROJECTOR, str(log), str(data), str(batch)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None
    last = 0
    try:
        for line in process.stdout:
            last = int(line)
            if last > after:
                break
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    return last


@pytest.fixture
def log(tmp_path: Path) -> tuple[Path, SQLiteApplicationRecorder, Desk]:
    path = tmp_path / "log.sqlite"
    recorder = SQLiteApplicationRecorder(SQLiteDatastore(str(path)))
    recorder.create_table()
    desk = Desk(recorder, T0, seed=17, buffer=10)
    desk.setup(capacity=100)
    return path, recorder, desk


def test_killed_while_keeping_views_current(
    log: tuple[Path, SQLiteApplicationRecorder, Desk], tmp_path: Path
) -> None:
    path, recorder, desk = log
    play(desk, 150, offset=0)
    data = tmp_path / "data"
    # A first build, finished: from here on the views commit batch by batch.
    Views(recorder, data).catch_up()
    start = recorder.max_notification_id() or 0
    play(desk, 900, offset=150)
    head = recorder.max_notification_id() or 0

    # Kill the projector part way through the new events.
    last = kill_part_way(path, data, batch=3, after=start + (head - start) // 3)
    assert start < last < head, "killed part way"

    # Restart: the views resume from their committed positions.
    views = Views(recorder, data)
    assert start < min(views.positions().values()) < head
    views.catch_up()
    fresh = Views(recorder, tmp_path / "fresh")
    fresh.catch_up()
    assert dumps(views) == dumps(fresh)
    views.close()
    fresh.close()


def test_killed_during_a_first_build(
    log: tuple[Path, SQLiteApplicationRecorder, Desk], tmp_path: Path
) -> None:
    path, recorder, desk = log
    play(desk, 600, offset=3)
    head = recorder.max_notification_id() or 0
    data = tmp_path / "data"
    last = kill_part_way(path, data, batch=5, after=head // 4)
    assert last < head, "killed part way"

    # The unfinished build is discarded and made again.
    views = Views(recorder, data)
    views.catch_up()
    fresh = Views(recorder, tmp_path / "fresh")
    fresh.catch_up()
    assert dumps(views) == dumps(fresh)
    views.close()
    fresh.close()


def test_killed_during_a_rebuild(
    log: tuple[Path, SQLiteApplicationRecorder, Desk], tmp_path: Path
) -> None:
    path, recorder, desk = log
    play(desk, 400, offset=5)
    head = recorder.max_notification_id() or 0
    data = tmp_path / "data"
    views = Views(recorder, data)
    views.catch_up()
    expected, files = dumps(views), views.catalog.current()
    views.close()

    # Kill a rebuild (its new generation holding rows in memory) part way.
    process = subprocess.Popen(
        [sys.executable, "-c", REBUILDER, str(path), str(data)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None
    try:
        for line in process.stdout:
            if int(line) > head // 3:
                break
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    assert any(f not in files.values() for f in os.listdir(data / "views")), "killed part way"

    # The current generation is untouched and answers; the half-built one is swept.
    views = Views(recorder, data)
    assert views.catalog.current() == files
    assert views.positions() == dict.fromkeys(VIEW_NAMES, head)
    assert dumps(views) == expected
    assert sorted(p.name for p in (data / "views").glob("*.sqlite")) == sorted(files.values())
    views.rebuild()
    assert dumps(views) == expected
    views.close()
