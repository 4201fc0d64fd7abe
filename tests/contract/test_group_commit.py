"""Group commit on the embedded store (issue #14 item 2): appends that arrive together
share one transaction; each append still stands or falls alone (a conflict fails only
itself), the global order is the batch order, a transaction that fails records nothing
of its batch, and every caller is answered only after the commit."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError, PersistenceError, StoredEvent
from eventsourcing.sqlite import SQLiteDatastore
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.stores.conditions import read_only
from engine.stores.group_commit import GroupCommit, Pending
from engine.stores.sqlite import Append, SQLiteConditionalRecorder
from tests.contract.store_contract import commented, opened

STREAMS = [UUID(int=i + 1) for i in range(3)]


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[SQLiteConditionalRecorder]:
    r = SQLiteConditionalRecorder(SQLiteDatastore(str(tmp_path / "events.sqlite")))
    r.create_table()
    yield r
    r.datastore.close()


def event(stream: UUID, version: int) -> StoredEvent:
    return opened(stream) if version == 1 else commented(stream, version)


def stored(recorder: SQLiteConditionalRecorder) -> list[tuple[int, UUID, int]]:
    return [
        (n.id, n.originator_id, n.originator_version)
        for n in recorder.select_notifications(1, 10_000)
    ]


# --- the batch rules, against a serial model -----------------------------------------

appends = st.lists(
    st.tuples(
        st.lists(st.tuples(st.sampled_from(STREAMS), st.integers(1, 3)), min_size=1, max_size=3),
        st.dictionaries(st.sampled_from(STREAMS), st.integers(0, 3), max_size=2),
    ),
    min_size=1,
    max_size=12,
)


def serially(batch: list[Any]) -> tuple[list[bool], list[tuple[UUID, int]]]:
    """What one append after another would record: an append stands if none of its
    versions is taken (nor repeated) and each condition on a stream it does not write
    still holds."""
    taken: list[tuple[UUID, int]] = []
    outcomes = []
    for keys, conditions in batch:
        fresh = len(set(keys)) == len(keys) and not set(keys) & set(taken)
        written = {s for s, _ in keys}
        holds = all(
            not any(s == c and v > version for s, v in taken)
            for c, version in conditions.items()
            if c not in written
        )
        outcomes.append(fresh and holds)
        if fresh and holds:
            taken += keys
    return outcomes, taken


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=appends)
def test_a_batch_records_what_the_appends_one_by_one_would(
    tmp_path_factory: pytest.TempPathFactory, batch: list[Any]
) -> None:
    path = tmp_path_factory.mktemp("batch") / "events.sqlite"
    recorder = SQLiteConditionalRecorder(SQLiteDatastore(str(path)))
    recorder.create_table()
    pendings: list[Pending[Append, Any]] = []
    for keys, conditions in batch:
        events = [event(s, v) for s, v in keys]
        pendings.append(Pending((events, read_only(conditions, events))))
    recorder._commit_batch(pendings)  # noqa: SLF001 - one batch, exactly as given

    outcomes, taken = serially(batch)
    assert [p.error is None for p in pendings] == outcomes
    for pending, ok in zip(pendings, outcomes, strict=True):
        if not ok:
            assert isinstance(pending.error, IntegrityError)  # a conflict, not a crash
    rows = stored(recorder)
    assert [(s, v) for _, s, v in rows] == taken  # the global order is the batch order
    ids = [i for p in pendings if p.result for i in p.result]
    assert ids == [i for i, _, _ in rows]  # each append answers its own positions
    recorder.datastore.close()


def test_a_failed_transaction_records_nothing_of_its_batch(
    recorder: SQLiteConditionalRecorder,
) -> None:
    good = [opened(uuid4())]
    broken = [StoredEvent(uuid4(), 1, "TicketOpened", {"not": "bytes"})]  # type: ignore[arg-type]
    pendings: list[Pending[Append, Any]] = [Pending((good, {})), Pending((broken, {}))]
    with pytest.raises(PersistenceError):
        recorder._commit_batch(pendings)  # noqa: SLF001
    assert stored(recorder) == []


def test_the_leader_commits_all_appends_that_queued_behind_it() -> None:
    """While one batch commits, every caller that arrives queues; the next leader
    takes them all in one batch, and each caller gets its own answer."""
    sizes: list[int] = []
    first_commit, release = threading.Event(), threading.Event()

    def commit(batch: Any) -> None:
        if not first_commit.is_set():
            first_commit.set()
            release.wait(10)
        for pending in batch:
            if pending.append % 5 == 0:
                pending.error = IntegrityError(f"append {pending.append} conflicts")
            else:
                pending.result = pending.append * 10

    group: GroupCommit[int, int] = GroupCommit(commit, observe=sizes.append)
    answers: dict[int, Any] = {}

    def send(n: int) -> None:
        try:
            answers[n] = group.submit(n)
        except IntegrityError as e:
            answers[n] = e

    leader = threading.Thread(target=send, args=(1,))
    leader.start()
    assert first_commit.wait(10)
    others = [threading.Thread(target=send, args=(n,)) for n in range(2, 12)]
    for t in others:
        t.start()
    deadline = threading.Event()
    while len(group._queue) < 10 and not deadline.wait(0.01):  # noqa: SLF001
        pass
    release.set()
    for t in [leader, *others]:
        t.join(10)
    assert sizes == [1, 10]
    for n in range(1, 12):
        if n % 5 == 0:
            assert isinstance(answers[n], IntegrityError)  # only the conflicting ones fail
        else:
            assert answers[n] == n * 10


def test_a_commit_that_raises_fails_its_whole_batch_and_the_next_batch_goes_on() -> None:
    calls: list[list[int]] = []

    def commit(batch: Any) -> None:
        calls.append([p.append for p in batch])
        if len(calls) == 1:
            raise OSError("disk I/O error")
        for pending in batch:
            pending.result = pending.append

    group: GroupCommit[int, int] = GroupCommit(commit)
    with pytest.raises(OSError):
        group.submit(1)
    assert group.submit(2) == 2


def test_many_callers_at_once_lose_nothing_and_record_no_version_twice(
    recorder: SQLiteConditionalRecorder,
) -> None:
    """16 threads append to 4 streams at once, racing for the same versions: every
    acknowledged append is recorded exactly once, and each refused one not at all."""
    streams = [uuid4() for _ in range(4)]
    acknowledged: list[tuple[UUID, int]] = []
    refused: list[tuple[UUID, int]] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        for round_ in range(20):
            stream = streams[(n + round_) % len(streams)]
            version = (recorder.select_events(stream, desc=True, limit=1) or [None])[0]
            v = 1 if version is None else version.originator_version + 1
            try:
                recorder.insert_events([event(stream, v)])
                with lock:
                    acknowledged.append((stream, v))
            except IntegrityError:
                with lock:
                    refused.append((stream, v))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    rows = [(s, v) for _, s, v in stored(recorder)]
    assert sorted(rows) == sorted(acknowledged)
    assert len(set(rows)) == len(rows)
    for stream in streams:
        versions = sorted(v for s, v in rows if s == stream)
        assert versions == list(range(1, len(versions) + 1))
    assert set(refused) <= set(rows)  # refused only because another caller took it
