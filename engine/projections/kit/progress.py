"""Progress of a long catch-up (a rebuild, a first start): events done, out of how
many, at what rate. ``total`` is the distance in positions at the start, an upper
bound of the event count when the log has gaps (Kafka); the last call has done=total."""

from __future__ import annotations

import time
from collections.abc import Callable

ProgressFn = Callable[[int, int, float], None]
"""Called with (events done, events in total, events per second)."""


class Meter:
    def __init__(self, report: ProgressFn | None, total: int, interval: float = 0.25) -> None:
        self.report = report
        self.total = total
        self.done = 0
        self.interval = interval
        self.started = time.perf_counter()
        self._last = 0.0

    @property
    def rate(self) -> float:
        elapsed = time.perf_counter() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def add(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        if self.report is not None and now - self._last >= self.interval:
            self._last = now
            self.report(self.done, max(self.total, self.done), self.rate)

    def finish(self) -> None:
        self.total = self.done
        if self.report is not None:
            self.report(self.done, self.done, self.rate)
