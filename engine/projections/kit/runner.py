"""Keeping views current: read the notification log in batches, apply each batch to
every view in one transaction per view (rows and tracking together).

Why not eventsourcing's ``ProjectionRunner``: it constructs the upstream application
from a class and environment, while the engine hands the views one recorder object
(SQLite or our Kafka cache); it relies on ``recorder.subscribe()``, which
``SQLiteApplicationRecorder`` does not implement in eventsourcing 9.5; and it commits
one transaction per event, too slow to rebuild a large log. This runner polls
``select_notifications`` (woken early by ``wake()`` after a local write), and applies
batches through the views' ``Projection.process_batch``; each view is still an
eventsourcing ``Projection`` over a ``TrackingRecorder``.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from eventsourcing.persistence import ApplicationRecorder, Notification, Tracking

from engine.domain.base import EVENT_TYPES
from engine.projections.kit.progress import Meter, ProgressFn
from engine.projections.kit.projection import RecordNotAppliedError, ViewProjection
from engine.projections.kit.records import (
    EventRecord,
    UnreadableRecordError,
    check_type,
    decode,
)
from engine.projections.kit.store import TrackingConflictError

log = logging.getLogger(__name__)


Batch = tuple[int, int, list[EventRecord]]
"""How many notifications were read, the last one's position, and the decoded ones."""


def read_batch(
    recorder: ApplicationRecorder,
    start: int,
    batch_size: int,
    upto: int | None,
    ignored: frozenset[str],
) -> Batch | None:
    """The notifications after ``start`` (at most ``upto``); those whose topic names an
    event type no view reads are not even decoded. A batch ends before an unreadable
    record; ``UnreadableRecordError`` (naming its position) when it is the first."""
    notifications = recorder.select_notifications(
        start=start, limit=batch_size, stop=upto, inclusive_of_start=False
    )
    if not notifications:
        return None
    while True:
        try:
            return _decoded(notifications, ignored)
        except UnreadableRecordError as e:
            # Apply what comes before the unreadable record; the next batch starts with it.
            before = [n for n in notifications if n.id < e.position]
            if not before:
                raise
            notifications = before


def _decoded(notifications: Sequence[Notification], ignored: frozenset[str]) -> Batch:
    for n in notifications:
        if n.topic in ignored:
            check_type(n)  # not decoded: only checked to be what its topic says
    records = decode([n for n in notifications if n.topic not in ignored])
    return len(notifications), notifications[-1].id, records


def apply_batch(projections: Sequence[ViewProjection], start: int, batch: Batch) -> None:
    """Apply a batch read after ``start`` to every view that has not applied it yet; each
    view's position moves to the batch's last notification, whether or not the view
    reads any of its events. A view whose handler fails on a record
    (``RecordNotAppliedError``, raised once every view had the batch) stops just before it."""
    _, last, records = batch
    failed: RecordNotAppliedError | None = None
    for projection in projections:
        position = projection.position
        if position >= last:
            continue
        todo = records if position <= start else [r for r in records if r["position"] > position]
        try:
            projection.process_batch(todo, Tracking(projection.upstream, last))
        except RecordNotAppliedError as e:
            # Apply what comes before the record the view failed on, and stop there (the
            # other views go on with the batch).
            if not projection.lost and e.position - 1 > position:
                before = [r for r in todo if r["position"] < e.position]
                projection.process_batch(before, Tracking(projection.upstream, e.position - 1))
            failed = failed or e
    if failed is not None:
        raise failed


def ignored_types(projections: Sequence[ViewProjection]) -> frozenset[str]:
    """Known event types that none of the views reads."""
    read = set().union(*(p.handlers for p in projections))
    return frozenset(EVENT_TYPES.keys() - read)


def step(
    recorder: ApplicationRecorder,
    projections: Sequence[ViewProjection],
    batch_size: int,
    upto: int | None = None,
) -> int:
    """Apply the next batch after the least advanced view's position (at most ``upto``).
    Returns how many notifications were read."""
    if not projections:
        return 0
    start = min(p.position for p in projections)
    batch = read_batch(recorder, start, batch_size, upto, ignored_types(projections))
    if batch is None:
        return 0
    apply_batch(projections, start, batch)
    return batch[0]


def build(
    recorder: ApplicationRecorder,
    projections: Sequence[ViewProjection],
    batch_size: int,
    progress: ProgressFn | None = None,
) -> int:
    """Bring views up to the log's head as it is now, then end their bulk builds (the
    views build their indexes in parallel: SQLite does not hold the GIL meanwhile).
    Returns the number of notifications read.

    One thread reads, decodes and applies: a reader thread was tried and was slower,
    since every row SQLite writes hands the GIL back and forth."""
    if not projections:
        return 0
    head = recorder.max_notification_id() or 0
    meter = Meter(progress, total=max(0, head - min(p.position for p in projections)))
    with _fewer_collections():
        while n := step(recorder, projections, batch_size, upto=head):
            meter.add(n)
    with ThreadPoolExecutor(len(projections)) as pool:
        list(pool.map(lambda p: p.finish_bulk(), projections))
    meter.finish()
    return meter.done


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """A build makes millions of short-lived dicts and no reference cycles: reference
    counting frees them, and the cycle collector, run every 700 allocations by default,
    only costs time (about a fifth of a large build)."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], 100_000), max(before[1], 50), max(before[2], 100))
    try:
        yield
    finally:
        gc.set_threshold(*before)


class ViewRunner:
    """Runs ``step`` in one background thread until stopped.

    ``lock`` is held for each batch, so whoever holds it (a rebuild switching views)
    knows no batch is half way. Errors are kept in ``error`` and retried with backoff:
    the views stay at their last committed position meanwhile.
    """

    def __init__(
        self,
        recorder: ApplicationRecorder,
        live: Callable[[], Sequence[ViewProjection]],
        lock: threading.RLock,
        *,
        batch_size: int = 500,
        bulk_batch_size: int = 2000,
        poll_interval: float = 0.05,
        progress: ProgressFn | None = None,
    ) -> None:
        self.recorder = recorder
        self.live = live
        self.lock = lock
        self.batch_size = batch_size
        self.bulk_batch_size = bulk_batch_size
        self.poll_interval = poll_interval
        self.progress = progress
        self.error: str | None = None
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="ticketing-views", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wake(self) -> None:
        """New events were recorded: look now rather than at the next poll."""
        self._wake.set()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        with self.lock:
            yield

    def _run(self) -> None:
        backoff = 0.0
        meter: Meter | None = None
        while not self._stopping.is_set():
            try:
                with self.lock:
                    projections = self.live()
                    bulk = any(p.view.bulk for p in projections)
                    size = self.bulk_batch_size if bulk else self.batch_size
                    if meter is None and self.progress is not None:
                        meter = self._meter(projections, size)
                    n = step(self.recorder, projections, size)
                    if n < size and bulk:
                        for projection in projections:
                            projection.finish_bulk()
                self.error, backoff = None, 0.0
            except TrackingConflictError as e:  # another writer moved on: reload and go on
                log.info("views: %s", e)
                continue
            except Exception as e:
                log.exception("views: applying events failed; retrying")
                self.error = f"{type(e).__name__}: {e}"
                backoff = min(5.0, backoff * 2 or 0.1)
                self._stopping.wait(backoff)
                continue
            if meter is not None:
                meter.add(n)
                if n < size:
                    meter.finish()
                    meter = None
            if n < size:
                self._wake.wait(self.poll_interval)
                self._wake.clear()

    def _meter(self, projections: Sequence[ViewProjection], size: int) -> Meter | None:
        """A meter when the views are more than a batch behind (a long catch-up)."""
        head = self.recorder.max_notification_id() or 0
        lag = head - min((p.position for p in projections), default=head)
        return Meter(self.progress, total=lag) if lag > size else None
