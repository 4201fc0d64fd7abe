"""The views' machinery: tracking in the rows' transaction, exactly-once application
across failures, waiting, the background runner, gaps in positions, rebuilds."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import (
    ApplicationRecorder,
    IntegrityError,
    Notification,
    StoredEvent,
    Subscription,
    Tracking,
    TrackingRecorder,
)
from eventsourcing.popo import POPOApplicationRecorder

from engine.domain.base import DomainError
from engine.projections import VIEW_NAMES, RebuildRunningError, Views
from engine.projections.kit.projection import RecordNotAppliedError, ViewProjection
from engine.projections.kit.runner import step
from engine.projections.kit.store import (
    StaleViewError,
    TrackingConflictError,
    ViewSchema,
    ViewStore,
    ViewStoreError,
)
from engine.projections.queue.view import QueueProjection
from tests.support.simulation import Desk

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


# --- the library's view contract, on our store ---------------------------------------
# eventsourcing.tests.projection.EventCountersViewTestCase states the contract; its
# module needs msgspec (not installed), so its steps are repeated here on our store.

SCHEMA = ViewSchema(
    "counters", 1, ("CREATE TABLE counters (name TEXT PRIMARY KEY, n INTEGER NOT NULL)",)
)


def _count(view: ViewStore, name: str) -> int:
    with view.read() as conn:
        row = conn.execute("SELECT n FROM counters WHERE name = ?", (name,)).fetchone()
    return 0 if row is None else int(row[0])


def _incr(view: ViewStore, name: str, tracking: Tracking) -> None:
    with view.write(tracking) as cur:
        cur.execute(
            "INSERT INTO counters VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET n = n + 1",
            (name,),
        )


def test_view_store_contract(tmp_path: Path) -> None:
    view = ViewStore(tmp_path / "counters.sqlite", SCHEMA, create=True)
    # Check the view is a tracking recorder that has processed nothing.
    assert isinstance(view, TrackingRecorder)
    assert view.max_tracking_id("upstream") is None
    assert (_count(view, "created"), _count(view, "subsequent")) == (0, 0)

    # Count events with their positions.
    _incr(view, "created", Tracking("upstream", 1))
    _incr(view, "subsequent", Tracking("upstream", 2))
    _incr(view, "subsequent", Tracking("upstream", 3))
    assert (_count(view, "created"), _count(view, "subsequent")) == (1, 2)
    assert view.max_tracking_id("upstream") == 3

    # Check a position is recorded uniquely and atomically with the rows.
    with pytest.raises(IntegrityError):
        _incr(view, "created", Tracking("upstream", 3))
    with pytest.raises(IntegrityError):
        _incr(view, "subsequent", Tracking("upstream", 3))
    assert (_count(view, "created"), _count(view, "subsequent")) == (1, 2)

    # Check wait() returns for a recorded position and times out otherwise.
    view.wait("upstream", 3)
    with pytest.raises(TimeoutError):
        view.wait("upstream", 4, timeout=0.5)
    view.close()


# --- a desk with some history --------------------------------------------------------------


def more(desk: Desk, commands: int, seed: int) -> None:
    """Play ``commands`` more commands (refused ones record nothing)."""
    for i in range(commands):
        desk.advance(37)
        try:
            desk.play((i + seed) * 7919 % 1000, (i + seed) * 104729 % 1000)
        except DomainError:
            continue


def dumps(views: Views) -> dict[str, Any]:
    return {name: views._live[name].view.dump() for name in VIEW_NAMES}


@pytest.fixture
def desk() -> Desk:
    desk = Desk(POPOApplicationRecorder(), T0, seed=11)
    desk.setup(capacity=50)
    more(desk, 120, seed=0)
    return desk


@pytest.fixture
def recorder(desk: Desk) -> POPOApplicationRecorder:
    assert isinstance(desk.recorder, POPOApplicationRecorder)
    return desk.recorder


# --- exactly once ------------------------------------------------------------------------


def test_a_failure_mid_batch_applies_nothing_and_a_retry_applies_once(
    desk: Desk, recorder: ApplicationRecorder, tmp_path: Path
) -> None:
    views = Views(recorder, tmp_path / "live", batch_size=40, bulk_batch_size=40)
    # Bring the views part way, then make the queue view fail in the middle of a batch.
    views.catch_up()
    more(desk, 60, seed=12)
    queue = views._live["queue"]
    before, position = queue.view.dump(), queue.position
    handler = queue._handlers["TicketTriaged"]
    calls = 0

    def failing(record: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("disk on fire")
        handler(record)

    queue._handlers["TicketTriaged"] = failing
    with pytest.raises(RuntimeError):
        step(recorder, [queue], 40)
    # Check nothing of the batch was kept: same rows, same position.
    assert queue.view.dump() == before
    assert queue.position == position

    # Check the retry applies every event once: same views as a fresh build.
    queue._handlers["TicketTriaged"] = handler
    views.catch_up()
    fresh = Views(recorder, tmp_path / "fresh")
    fresh.catch_up()
    assert dumps(views) == dumps(fresh)
    views.close()
    fresh.close()


def test_a_record_a_handler_fails_on_is_named_and_the_view_stops_just_before_it(
    desk: Desk, recorder: ApplicationRecorder, tmp_path: Path
) -> None:
    views = Views(recorder, tmp_path / "live", batch_size=40, bulk_batch_size=40)
    views.catch_up()
    more(desk, 60, seed=12)
    queue = views._live["queue"]
    handler = queue._handlers["TicketTriaged"]
    seen: list[int] = []

    def failing(record: Any) -> None:
        seen.append(record["position"])
        if record["position"] in seen[2:3]:  # the third it sees, every time
            raise KeyError("ticket")  # as a handler missing a row would
        handler(record)

    queue._handlers["TicketTriaged"] = failing
    with pytest.raises(RecordNotAppliedError, match="TicketTriaged"):
        step(recorder, [queue], 40)
    bad = seen[2]
    assert queue.position == bad - 1
    with pytest.raises(RecordNotAppliedError, match=f"notification {bad} \\(TicketTriaged\\)"):
        step(recorder, [queue], 40)
    assert queue.position == bad - 1

    # Once the handler reads it, the view goes on: the same as a fresh build.
    queue._handlers["TicketTriaged"] = handler
    views.catch_up()
    fresh = Views(recorder, tmp_path / "fresh")
    fresh.catch_up()
    assert dumps(views) == dumps(fresh)
    views.close()
    fresh.close()


def test_a_failure_while_writing_rows_rolls_back_the_position_too(
    desk: Desk, recorder: ApplicationRecorder, tmp_path: Path
) -> None:
    views = Views(recorder, tmp_path)
    views.catch_up()
    more(desk, 30, seed=13)
    reports = views._live["reports"]
    before, position = reports.view.dump(), reports.position
    flush = reports.flush

    def half_flush(cur: sqlite3.Cursor) -> None:
        reports.tickets.flush(cur)  # some rows written ...
        raise sqlite3.OperationalError("disk I/O error")  # ... then the disk fails

    reports.flush = half_flush  # type: ignore[method-assign]
    with pytest.raises(sqlite3.OperationalError):
        step(recorder, [reports], 500)
    assert reports.view.dump() == before and reports.position == position
    reports.flush = flush  # type: ignore[method-assign]
    views.catch_up()
    fresh = Views(recorder, tmp_path / "fresh")
    fresh.catch_up()
    assert dumps(views) == dumps(fresh)
    views.close()
    fresh.close()


def test_a_replayed_position_is_refused_and_changes_nothing(
    recorder: ApplicationRecorder, tmp_path: Path
) -> None:
    views = Views(recorder, tmp_path)
    views.catch_up()
    audit = views._live["audit"]
    before, position = audit.view.dump(), audit.position
    notifications = recorder.select_notifications(start=position - 5, limit=5)
    from engine.projections.kit.records import decode

    with pytest.raises(IntegrityError):
        audit.process_batch(decode(notifications), Tracking(audit.upstream, position))
    with pytest.raises(IntegrityError):
        audit.view.insert_tracking(Tracking(audit.upstream, position - 1))
    assert audit.view.dump() == before and audit.position == position
    views.close()


def test_a_second_writer_is_detected(
    desk: Desk, recorder: ApplicationRecorder, tmp_path: Path
) -> None:
    views = Views(recorder, tmp_path, batch_size=50)
    views.catch_up()
    more(desk, 40, seed=14)
    queue = views._live["queue"]
    # Another process's writer moves the position first.
    other = ViewStore(queue.view.path, queue.schema)
    other.insert_tracking(Tracking(queue.upstream, queue.position + 1))
    with pytest.raises(TrackingConflictError):
        step(recorder, [queue], 50)
    other.close()
    views.close()


# --- waiting ---------------------------------------------------------------------------


def test_wait_honours_its_timeout(recorder: ApplicationRecorder, tmp_path: Path) -> None:
    views = Views(recorder, tmp_path)
    views.catch_up()
    head = recorder.max_notification_id()
    views.wait(head, timeout=0.1)  # reached: returns at once
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        views.wait(head + 1, timeout=0.3)
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 1.0
    views.close()


def test_the_runner_keeps_views_current_and_wakes_waiters(
    recorder: ApplicationRecorder, tmp_path: Path
) -> None:
    views = Views(recorder, tmp_path, poll_interval=5.0)  # only a wake-up is fast
    views.start()
    try:
        views.wait(recorder.max_notification_id(), timeout=10)
        Desk(recorder, T0, seed=99).create_queue("late")
        views.notify()
        started = time.monotonic()
        views.wait(recorder.max_notification_id(), timeout=2)
        assert time.monotonic() - started < 1.0
        assert "late" in {q.name for q in views.queues()}
        health = views.health()
        assert health["running"] and health["error"] is None
        assert all(v["lag"] == 0 for v in health["views"].values())
    finally:
        views.stop()
    assert not views.health()["running"]
    views.close()


# --- gaps in positions (the Kafka store) --------------------------------------------------


class GappyRecorder(ApplicationRecorder):
    """Notification ids 10, 20, 30, ...: a log with gaps between positions."""

    def __init__(self, inner: POPOApplicationRecorder) -> None:
        self.inner = inner

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        self.inner.insert_events(stored_events, **kwargs)

    def select_events(self, *args: Any, **kwargs: Any) -> Sequence[StoredEvent]:
        return self.inner.select_events(*args, **kwargs)

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        if start is None:
            inner_start = None
        elif inclusive_of_start:
            inner_start = -(-start // 10)  # the first id at or after start
        else:
            inner_start = start // 10 + 1
        inner = self.inner.select_notifications(
            inner_start, limit, None if stop is None else stop // 10, topics
        )
        return [
            Notification(
                id=n.id * 10,
                originator_id=n.originator_id,
                originator_version=n.originator_version,
                topic=n.topic,
                state=n.state,
            )
            for n in inner
        ]

    def max_notification_id(self) -> int | None:
        head = self.inner.max_notification_id()
        return None if head is None else head * 10

    def subscribe(self, gt: int | None = None, topics: Sequence[str] = ()) -> Subscription[Any]:
        raise NotImplementedError


def test_gaps_in_positions(recorder: POPOApplicationRecorder, tmp_path: Path) -> None:
    gappy = GappyRecorder(recorder)
    views = Views(gappy, tmp_path, batch_size=7, bulk_batch_size=7)
    views.catch_up()
    head = gappy.max_notification_id()
    assert head is not None and views.positions() == dict.fromkeys(VIEW_NAMES, head)
    views.wait(head, timeout=0.1)
    plain = Views(recorder, tmp_path / "plain")
    plain.catch_up()
    # Same views, but positions (and position-keyed rows) ten times larger.
    assert views.queues() == plain.queues()
    assert [e.position for e in views.events(after=0, limit=3)] == [10, 20, 30]
    # Histories read the events back from the log by their (gappy) positions.
    ticket = plain.search_tickets(limit=1)[0][0].ticket_id
    gappy_history, plain_history = views.history(ticket), plain.history(ticket)
    assert [h.position for h in gappy_history] == [h.position * 10 for h in plain_history]
    assert [h.changes for h in gappy_history] == [h.changes for h in plain_history]
    assert list(views.export(ticket_id=ticket))
    views.close()
    plain.close()


# --- files and rebuilds --------------------------------------------------------------------


def test_rebuild_switches_while_the_old_views_answer(
    recorder: ApplicationRecorder, tmp_path: Path
) -> None:
    views = Views(recorder, tmp_path, bulk_batch_size=25)
    views.catch_up()
    views.start()
    expected = dumps(views)
    old_files = {views.catalog.path(f) for f in views.catalog.current().values()}
    answers: list[int] = []

    def progress(done: int, total: int, rate: float) -> None:
        # Queries keep answering from the current generation during the build.
        answers.append(len(views.queues()))
        assert 0 <= done <= total and rate >= 0

    views.rebuild(progress=progress)
    assert answers and all(n == answers[0] for n in answers)
    assert dumps(views) == expected
    assert all(not p.exists() for p in old_files)
    assert {f.split(".")[1] for f in views.catalog.current().values()} == {"2"}

    # One view alone.
    views.rebuild("audit")
    assert views.catalog.current()["audit"] == "audit.3.sqlite"
    assert dumps(views) == expected

    # The runner goes on with the new generation.
    Desk(recorder, T0, seed=5).create_queue("after-rebuild")
    views.notify()
    views.wait(recorder.max_notification_id(), timeout=5)
    assert "after-rebuild" in {q.name for q in views.queues()}
    views.close()


def test_a_failure_during_a_rebuild_keeps_the_current_views(
    recorder: ApplicationRecorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    views = Views(recorder, tmp_path, bulk_batch_size=10, cache_rows=2)
    views.catch_up()
    expected, files = dumps(views), views.catalog.current()
    # The new generation holds its rows; make its queue view fail part way.
    calls = 0
    hold_rows = ViewProjection.hold_rows

    def fail_later(projection: ViewProjection) -> None:
        hold_rows(projection)
        if projection.name == "queue":
            handler = projection.handlers["TicketTriaged"]

            def failing(record: Any) -> None:
                nonlocal calls
                calls += 1
                if calls == 5:
                    raise RuntimeError("disk on fire")
                handler(record)

            projection._handlers["TicketTriaged"] = failing  # type: ignore[attr-defined]

    monkeypatch.setattr(ViewProjection, "hold_rows", fail_later)
    with pytest.raises(RuntimeError):
        views.rebuild()
    # Check the current generation still answers, unchanged, and the new one is gone.
    assert calls == 5
    assert views.catalog.current() == files
    assert dumps(views) == expected
    assert sorted(p.name for p in views.catalog.directory.glob("*.sqlite")) == sorted(
        files.values()
    )
    monkeypatch.undo()
    views.rebuild()
    assert dumps(views) == expected
    views.close()


def test_only_a_bulk_build_holds_its_rows(recorder: ApplicationRecorder, tmp_path: Path) -> None:
    views = Views(recorder, tmp_path)
    views.catch_up()  # the first build ends: the views write every batch from now on
    with pytest.raises(ViewStoreError):
        views._live["queue"].hold_rows()
    views.close()


def test_a_held_build_refuses_to_go_on_after_a_failed_batch(
    recorder: ApplicationRecorder, tmp_path: Path
) -> None:
    store = ViewStore(tmp_path / "queue.sqlite", QueueProjection.schema, create=True, bulk=True)
    queue = QueueProjection(store, cache_rows=2)
    queue.hold_rows()
    step(recorder, [queue], 30)
    handler = queue._handlers["TicketOpened"]

    def failing(record: Any) -> None:
        raise RuntimeError("disk on fire")

    queue._handlers["TicketOpened"] = failing
    with pytest.raises(RuntimeError):
        while step(recorder, [queue], 30):
            pass
    # The rows held since the last write are gone: no retry, no finished file.
    queue._handlers["TicketOpened"] = handler
    with pytest.raises(ViewStoreError, match="rows were held"):
        step(recorder, [queue], 30)
    with pytest.raises(ViewStoreError, match="rows were held"):
        queue.finish_bulk()
    store.close()
    with pytest.raises(StaleViewError):
        ViewStore(tmp_path / "queue.sqlite", QueueProjection.schema)


def test_one_rebuild_at_a_time(recorder: ApplicationRecorder, tmp_path: Path) -> None:
    views = Views(recorder, tmp_path)
    with views.catalog.rebuilding(), pytest.raises(RebuildRunningError):
        views.rebuild()
    with pytest.raises(ValueError):
        views.rebuild("nonsense")
    views.close()


def test_views_are_rebuilt_when_their_files_are_stale_or_gone(
    recorder: ApplicationRecorder, tmp_path: Path
) -> None:
    views = Views(recorder, tmp_path)
    views.catch_up()
    expected = dumps(views)
    files = views.catalog.current()
    views.close()
    # An older schema version, an unfinished first build, a deleted file.
    with sqlite3.connect(views.catalog.path(files["queue"])) as conn:
        conn.execute("UPDATE view_meta SET value = '0' WHERE key = 'version'")
    with sqlite3.connect(views.catalog.path(files["audit"])) as conn:
        conn.execute("UPDATE view_meta SET value = '1' WHERE key = 'bulk'")
    views.catalog.path(files["reports"]).unlink()

    again = Views(recorder, tmp_path)
    assert all(again.catalog.current()[n] != files[n] for n in VIEW_NAMES)
    assert again.positions() == dict.fromkeys(VIEW_NAMES, 0)
    again.catch_up()
    assert dumps(again) == expected
    # The stale files were swept.
    assert not any(again.catalog.path(f).exists() for f in files.values())
    again.close()


def test_events_stream_reads_the_log(recorder: ApplicationRecorder, tmp_path: Path) -> None:
    views = Views(recorder, tmp_path)
    events = views.events(after=3, limit=4)
    assert [e.position for e in events] == [4, 5, 6, 7]
    assert events[0].envelope["type"] and events[0].envelope["aggregate_id"]
    assert views.events(after=recorder.max_notification_id() or 0) == []
    with pytest.raises(ValueError):
        views.events(limit=0)
    views.close()


def test_concurrent_readers_during_writes(
    desk: Desk, recorder: ApplicationRecorder, tmp_path: Path
) -> None:
    views = Views(recorder, tmp_path, batch_size=10)
    views.start()
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                for q in views.queues():
                    views.queue_tickets(q.name, limit=5)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    more(desk, 80, seed=21)
    views.notify()
    views.wait(recorder.max_notification_id(), timeout=10)
    stop.set()
    for t in readers:
        t.join()
    assert errors == []
    views.close()


@pytest.fixture(autouse=True)
def _no_thread_leaks() -> Iterator[None]:
    before = {t.name for t in threading.enumerate()}
    yield
    leaked = {t.name for t in threading.enumerate()} - before
    assert "ticketing-views" not in leaked
