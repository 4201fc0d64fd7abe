"""Who holds the writer role: a lease decided by the order of the leases topic.

Every instance replays the leases topic the same way, so all agree on the holder:
a ``claim`` for epoch N+1 is valid only if it is the first claim read while the
epoch is N (a compare-and-set settled by log order); a ``resign`` by the holder frees
the role at once. The holder proves it is alive with heartbeats on the replies topic;
an instance may claim when the role is free, resigned, or its holder has been silent
for the lease timeout (measured on the local monotonic clock, and only while this
instance hears from the broker: a broker fault silences every heartbeat). The lease only avoids
two writers fencing each other in normal work; safety does not rest on it: the
transactional id fences any previous writer, and every new writer catches up with the
whole log before it checks a version.
"""

from __future__ import annotations

import threading
import time

from engine.stores.kafka.codec import LeaseRecord


class LeaseView:
    """This instance's replay of the leases topic plus the heartbeats it has seen.
    Thread-safe; ``changed`` is set whenever the holder or epoch changes."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.epoch = 0
        self.holder: str | None = None
        self.resigned = False
        self.last_seen = time.monotonic()
        self.heard_at = self.last_seen  # when the broker last answered this instance
        self.position = 0  # next offset of the leases topic to be read
        self.changed = threading.Event()

    def apply(self, record: LeaseRecord, offset: int) -> None:
        """Take in the leases record at ``offset``."""
        with self._cond:
            if record.kind == "claim" and record.epoch == self.epoch + 1:
                self.epoch, self.holder, self.resigned = record.epoch, record.writer, False
                self.last_seen = time.monotonic()
                self.changed.set()
            elif record.kind == "resign" and (record.writer, record.epoch) == (
                self.holder,
                self.epoch,
            ):
                self.resigned = True
                self.changed.set()
            self.position = max(self.position, offset + 1)
            self._cond.notify_all()

    def advance(self, position: int) -> None:
        """The leases topic has been read up to ``position`` (exclusive)."""
        with self._cond:
            if position > self.position:
                self.position = position
                self._cond.notify_all()

    def heartbeat(self, writer: str, epoch: int) -> None:
        with self._cond:
            if (writer, epoch) == (self.holder, self.epoch):
                self.last_seen = time.monotonic()

    def heard_from_broker(self, at: float, lease_timeout: float) -> None:
        """The broker answered this instance's tailer at ``at`` (monotonic).

        After a silence of the broker longer than half a lease (a broker fault or a
        cut network), the holder's heartbeats may have been held back, not missed:
        give it a whole lease from now to be heard again, so that a broker fault
        does not make every instance claim the role at once."""
        with self._cond:
            if at - self.heard_at > lease_timeout / 2:
                self.last_seen = max(self.last_seen, at)
            self.heard_at = max(self.heard_at, at)

    def holds(self, writer: str, epoch: int) -> bool:
        with self._cond:
            return (self.holder, self.epoch, self.resigned) == (writer, epoch, False)

    def claimable(self, lease_timeout: float) -> bool:
        """The role is free, resigned, or its holder has been silent for the lease
        timeout while the broker was answering this instance."""
        with self._cond:
            now = time.monotonic()
            return (
                self.holder is None
                or self.resigned
                or (
                    now - self.last_seen > lease_timeout and now - self.heard_at < lease_timeout / 2
                )
            )

    def wait_for_position(self, position: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.position < position:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True
