"""Group commit: appends that arrive together are written in one transaction.

The caller that finds no commit under way leads: it takes every append queued so far
(its own included) and commits them as one batch, while later callers queue up for the
next batch. One caller alone is its own leader at once (no hand-off to another thread,
no added wait); under load, one transaction and one fsync serve many appends.

Within a batch each append runs in its own savepoint: a conflicting append (a version
taken, a failed condition) is rolled back to its savepoint and fails alone; its
batch-mates commit. An error of the transaction itself fails the whole batch and no
append of it is recorded. Each caller is answered only after the batch has committed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

MAX_BATCH = 256  # appends per transaction: bounds one batch's latency


@dataclass(eq=False)
class Pending(Generic[T, R]):
    """One caller's append, and once its batch is committed, its result or error."""

    append: T
    result: R | None = None
    error: BaseException | None = None
    done: bool = False


class GroupCommit(Generic[T, R]):
    """Batches ``submit`` calls from many threads into calls of ``commit(batch)``.

    ``commit`` gets the batch's appends in arrival order and sets each one's ``result``
    or ``error``; if it raises, every append of the batch gets that error."""

    def __init__(
        self,
        commit: Callable[[Sequence[Pending[T, R]]], None],
        max_batch: int = MAX_BATCH,
        observe: Callable[[int], None] | None = None,
    ) -> None:
        self._commit = commit
        self._max_batch = max_batch
        self.observe = observe
        self._turn = threading.Condition()
        self._queue: list[Pending[T, R]] = []
        self._leading = False

    def submit(self, append: T) -> R:
        """Commit ``append`` in the next batch; its result, or its error raised."""
        mine: Pending[T, R] = Pending(append)
        with self._turn:
            self._queue.append(mine)
        while True:
            with self._turn:
                while self._leading and not mine.done:
                    self._turn.wait()
                if mine.done:
                    break
                self._leading = True  # the queue is in arrival order: ours comes
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
            self._lead(batch)
        if mine.error is not None:
            raise mine.error
        return mine.result  # type: ignore[return-value]

    def _lead(self, batch: list[Pending[T, R]]) -> None:
        try:
            self._commit(batch)
        except BaseException as e:  # the transaction failed: nothing of it is recorded
            for pending in batch:
                pending.result, pending.error = None, e
        finally:
            with self._turn:
                for pending in batch:
                    pending.done = True
                self._leading = False
                self._turn.notify_all()
        if self.observe is not None:
            self.observe(len(batch))
