"""Following the notification log for the engine's own processes: read it in batches
from a tracked position, hand each relevant event to the reactors in log order, and
append what they decide through the runner, grouped.

While catching up, the reactions of different tickets are decided one by one on fresh
loads and appended together (one commit) at the end of a batch of the log, or sooner
when ``group_size`` are waiting, a ticket comes up again or something else must be
recorded first: the log then holds the same events in the same order as one append per
reaction would. If a group's append conflicts, none of it is recorded and each reaction
is decided again on a fresh load and appended alone. The position moves past a reaction
only once it is recorded; the tracking position (the library's tracking recorder) only
saves re-reading, since every decision is idempotent by optimistic concurrency.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, cast
from uuid import UUID

from eventsourcing.persistence import (
    IntegrityError,
    Notification,
    OperationalError,
    Recording,
    Tracking,
    TrackingRecorder,
)
from eventsourcing.popo import POPOTrackingRecorder

from engine.app.errors import ConflictError
from engine.app.runner import Decided, Runner
from engine.domain.base import DomainError, DomainEvent

log = logging.getLogger("ticketing.clock")

MAX_ATTEMPTS = 8
# Reactions appended together at most: fewer commits, while each append (it holds the
# store's writer lock) stays short next to the API's.
GROUP_SIZE = 16


class RetryLaterError(Exception):
    """A decision kept conflicting or the store is busy: stop here, retry from here later."""


class Reactor(Protocol):
    """One thing a process does with the log."""

    topics: frozenset[str]  # the events it reacts to or indexes
    index_topics: frozenset[str]  # the events its indexes are rebuilt from at start

    def index(self, event: DomainEvent) -> None: ...

    def react(self, event: DomainEvent) -> None: ...

    def tick(self, now: datetime) -> int: ...


@dataclass(frozen=True)
class Pending:
    """A ticket's reaction, decided on a fresh load but not appended yet."""

    ticket_id: UUID
    decided: tuple[Decided, ...]
    redo: Callable[[], int]  # decide again on a fresh load and append alone
    label: str  # what the reaction is to, for the log


def tracking_in(data_dir: Path, file_name: str) -> TrackingRecorder:
    """A tracking position in ``data_dir/file_name`` (the library's SQLite recorder)."""
    from eventsourcing.sqlite import SQLiteFactory

    factory = SQLiteFactory({"SQLITE_DBNAME": str(data_dir / file_name)})
    return factory.tracking_recorder()


class LogFollower:
    """Reads the log for its reactors and appends their grouped decisions."""

    def __init__(
        self,
        runner: Runner,
        now: Callable[[], datetime],
        tracking: TrackingRecorder | None,
        name: str,
        *,
        batch_size: int = 500,
        group_size: int = GROUP_SIZE,
    ) -> None:
        self.runner = runner
        self.app = runner.app
        self.now = now
        self.tracking = tracking if tracking is not None else POPOTrackingRecorder()
        self.name = name
        self.batch_size = batch_size
        self.group_size = group_size
        self.position = self.tracking.max_tracking_id(name) or 0
        self.reactors: list[Reactor] = []
        # Decided reactions of distinct tickets, appended together by ``flush``, and the
        # last notification read before them; notification ids of our own events that
        # were indexed when saved (reading them back changes nothing).
        self._pending: list[Pending] = []
        self._pending_tickets: set[UUID] = set()
        self._pending_until = 0
        self.own: set[int] = set()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # --- reading ----------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Rebuild the reactors' indexes from the log up to the tracked position."""
        topics = sorted(frozenset().union(*(r.index_topics for r in self.reactors)))
        start = 0
        while start < self.position:
            batch = self.app.recorder.select_notifications(
                start, self.batch_size, stop=self.position, topics=topics, inclusive_of_start=False
            )
            for notification in batch:
                event = self._decode(notification)
                for reactor in self.reactors:
                    if event.type_name in reactor.index_topics:
                        reactor.index(event)
            if len(batch) < self.batch_size:
                return
            start = batch[-1].id

    def catch_up(self) -> int:
        """React to every new notification; returns how many were read."""
        read = 0
        while True:
            batch = self.app.recorder.select_notifications(
                self.position, self.batch_size, inclusive_of_start=False
            )
            try:
                for notification in batch:
                    self._process(notification)
                    if self._pending:
                        self._pending_until = notification.id
                    else:
                        self.position = notification.id
                    read += 1
                self.flush()
            finally:
                self._pending.clear()  # not recorded: decided again from the position
                self._pending_tickets.clear()
                self._save_position()
            if len(batch) < self.batch_size:
                return read

    def _save_position(self) -> None:
        if self.position <= (self.tracking.max_tracking_id(self.name) or 0):
            return
        try:
            self.tracking.insert_tracking(Tracking(self.name, self.position))
        except IntegrityError:
            pass  # Another process sharing the tracking file is further on.

    def _decode(self, notification: Notification) -> DomainEvent:
        return cast(DomainEvent, self.app.mapper.to_domain_event(notification))

    def _process(self, notification: Notification) -> None:
        topic = notification.topic
        reactors = [r for r in self.reactors if topic in r.topics]
        if not reactors:
            return
        if notification.id in self.own:
            self.own.discard(notification.id)
            return
        event = self._decode(notification)
        for reactor in reactors:
            reactor.index(event)
        for reactor in reactors:
            try:
                reactor.react(event)
            except (RetryLaterError, OperationalError):
                raise
            except DomainError as error:
                # A refusal is final for this event (e.g. an unknown calendar): record nothing.
                log.warning("clock: %s at position %s: %s", topic, notification.id, error)

    # --- appending ----------------------------------------------------------------------------

    def waits_for(self, ticket_id: UUID) -> bool:
        """Whether a reaction of the ticket is decided but not appended yet."""
        return ticket_id in self._pending_tickets

    def defer(self, pending: Pending) -> None:
        """Append ``pending`` with the next group."""
        self._pending.append(pending)
        self._pending_tickets.add(pending.ticket_id)
        if len(self._pending) >= self.group_size:
            self.flush()

    def flush(self) -> None:
        """Append the waiting reactions in one append; on a conflict decide each again."""
        pending, self._pending = self._pending, []
        self._pending_tickets.clear()
        if not pending:
            return
        try:
            self.saved(self.runner.append(*(d for p in pending for d in p.decided)))
        except ConflictError:
            # Nothing was recorded: each reaction again, alone, on a fresh load.
            for p in pending:
                try:
                    p.redo()
                except DomainError as error:
                    log.warning("clock: %s: %s", p.label, error)
        self.position = max(self.position, self._pending_until)

    def append_now(self, *decided: Decided) -> list[Recording[UUID]]:
        """What was decided before is recorded first, then ``decided`` alone (raises
        ``ConflictError`` when a stream moved on)."""
        self.flush()
        recordings = self.runner.append(*decided)
        self.saved(recordings)
        return recordings

    def saved(self, recordings: list[Recording[UUID]]) -> None:
        """Index our own new events now; reading them back later changes nothing."""
        for recording in recordings:
            event = cast(DomainEvent, recording.domain_event)
            for reactor in self.reactors:
                if event.type_name in reactor.topics:
                    reactor.index(event)
                    self.own.add(recording.notification.id)

    @staticmethod
    def isolated(ticket_id: UUID, work: Callable[[], int]) -> int:
        """One ticket's refusal (a domain error) does not hold up the others."""
        try:
            return work()
        except DomainError as error:
            log.warning("clock: ticket %s: %s", ticket_id, error)
            return 0

    # --- running ------------------------------------------------------------------------------

    def tick(self) -> int:
        """What falls due by now (the time source) for every reactor; the appends made."""
        now = self.now()
        return sum(reactor.tick(now) for reactor in self.reactors)

    def run_once(self) -> int:
        self.catch_up()
        return self.tick()

    def run(self, stopping: threading.Event, interval_s: float = 1.0) -> None:
        """Loop until ``stopping`` is set; errors are logged and the next round retries."""
        while not stopping.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("SLA clock round failed; retrying in %ss", interval_s)
            stopping.wait(interval_s)

    def start(self, interval_s: float = 1.0, stopping: threading.Event | None = None) -> None:
        """Run in a daemon thread until ``stop()`` (or ``stopping`` is set)."""
        if stopping is not None:
            self._stopping = stopping
        self._thread = threading.Thread(
            target=self.run, args=(self._stopping, interval_s), name=self.name, daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
