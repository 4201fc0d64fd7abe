"""The cache recognises what it holds and takes in only records that continue their
chain (#13 item 2): event id and chain hash per offset, the link check, the refusal of
every read once diverged, and the marks given to a cache file of an earlier release."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.integrity.chain import envelope_hash
from engine.integrity.jsonbytes import compact_json
from engine.stores.kafka.cache import EventCache
from engine.stores.kafka.codec import EventRow
from engine.stores.kafka.errors import REBUILD_COMMAND, CacheDivergedError
from engine.stores.kafka.lineage import Mark, mark_of

TOPIC = "desk"


def link(aggregate: str, version: int, prev: str | None) -> EventRow:
    envelope: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "type": "TicketCommented",
        "schema_version": 1,
        "aggregate_type": "Ticket",
        "aggregate_id": aggregate,
        "aggregate_version": version,
        "occurred_at": "2026-11-24T09:00:00Z",
        "actor": "a",
        "correlation_id": str(uuid.uuid4()),
        "causation_id": None,
        "data": {"body": "x"},
        "prev_hash": prev,
    }
    envelope["hash"] = envelope_hash(envelope)
    return EventRow(aggregate, version, "TicketCommented", compact_json(envelope))


def chain(aggregate: str, count: int) -> list[EventRow]:
    rows, prev = [], None
    for version in range(1, count + 1):
        row = link(aggregate, version, prev)
        prev = json.loads(row.state)["hash"]
        rows.append(row)
    return rows


@pytest.fixture
def cache(tmp_path: Path) -> Any:
    cache = EventCache(tmp_path / "cache.sqlite", TOPIC)
    yield cache
    cache.close()


class TestMarks:
    def test_an_envelope_of_its_own_record_is_a_link(self) -> None:
        row = chain("t1", 1)[0]
        envelope = json.loads(row.state)
        assert mark_of(row) == Mark(envelope["event_id"], envelope["hash"], None)

    def test_opaque_states_and_foreign_envelopes_are_no_links(self) -> None:
        assert mark_of(EventRow("t1", 1, "X", b"state1")) == Mark()
        assert mark_of(EventRow("t1", 1, "X", b"{not json")) == Mark()
        # An event id the cache could not store is no event id (found by the fuzz tests).
        assert mark_of(EventRow("t1", 1, "X", b'{"event_id": "\\ud800"}')) == Mark()
        other = chain("t2", 1)[0]  # an envelope of another aggregate than the record's
        moved = EventRow("t1", 1, other.topic, other.state)
        assert mark_of(moved) == Mark(json.loads(other.state)["event_id"])
        assert not mark_of(moved).is_link


class TestIngest:
    def test_chains_are_taken_in_with_their_marks(self, cache: EventCache) -> None:
        rows = chain("t1", 3) + chain("t2", 2)
        assert cache.ingest(list(enumerate(rows)), len(rows)) == 5
        assert cache.head == 5 and cache.diverged is None

    def test_a_record_that_does_not_continue_its_chain_diverges_the_cache(
        self, cache: EventCache
    ) -> None:
        rows = chain("t1", 2)
        cache.ingest(list(enumerate(rows)), 2)
        stray = link("t1", 3, envelope_hash({"another": "history"}))
        with pytest.raises(CacheDivergedError) as raised:
            cache.ingest([(2, stray)], 3)
        divergence = raised.value.divergence
        assert divergence.offset == 2 and divergence.cached_up_to == 2
        assert divergence.found == json.loads(stray.state)["event_id"]
        assert "does not continue the hash chain" in divergence.cause
        # Nothing of it was taken in, and nothing is served any more.
        assert cache.head == 2 and cache.next_offset == 2
        for read in (
            lambda: cache.select_notifications(None, 10),
            lambda: cache.select_events("t1"),
            lambda: cache.existing([("t1", 1)]),
            lambda: cache.max_notification_id(),
            lambda: cache.wait_for_offset(5, 0.01),
            lambda: cache.ingest([(3, link("t9", 1, None))], 4),
        ):
            with pytest.raises(CacheDivergedError, match=REBUILD_COMMAND):
                read()

    def test_a_version_whose_predecessor_is_not_cached_breaks_the_chain(
        self, cache: EventCache
    ) -> None:
        second = chain("t1", 2)[1]
        with pytest.raises(CacheDivergedError, match="does not have"):
            cache.ingest([(0, second)], 1)

    def test_a_first_version_that_links_to_something_breaks_the_chain(
        self, cache: EventCache
    ) -> None:
        with pytest.raises(CacheDivergedError, match="links to a previous event"):
            cache.ingest([(0, link("t1", 1, envelope_hash({"x": 1})))], 1)

    def test_an_offset_already_read_must_hold_the_cached_record(self, cache: EventCache) -> None:
        rows = chain("t1", 2)
        cache.ingest(list(enumerate(rows)), 2)
        cache.ingest([(1, rows[1])], 2)  # the writer's own event, read back: fine
        with pytest.raises(CacheDivergedError, match="already read otherwise"):
            cache.ingest([(1, chain("t5", 1)[0])], 2)

    @settings(max_examples=60, deadline=None)
    @given(
        lengths=st.lists(st.integers(1, 6), min_size=1, max_size=5),
        order=st.randoms(use_true_random=False),
        broken=st.integers(0, 1000),
    )
    def test_any_interleaving_of_chains_is_taken_in_and_any_bent_link_is_refused(
        self, tmp_path_factory: Any, lengths: list[int], order: Any, broken: int
    ) -> None:
        # Interleave several aggregates' chains, each in its own order, as a log does.
        queues = [chain(f"a{i}", n) for i, n in enumerate(lengths)]
        log: list[EventRow] = []
        while any(queues):
            queue = order.choice([q for q in queues if q])
            log.append(queue.pop(0))
        cache = EventCache(tmp_path_factory.mktemp("c") / "cache.sqlite", TOPIC)
        try:
            cache.ingest(list(enumerate(log)), len(log))
            assert cache.head == len(log)
        finally:
            cache.close()
        # Bend one link with a version above 1: the cache stops right there.
        candidates = [i for i, row in enumerate(log) if row.originator_version > 1]
        if not candidates:
            return
        at = candidates[broken % len(candidates)]
        row = log[at]
        log[at] = link(row.originator_id, row.originator_version, envelope_hash({"b": at}))
        cache = EventCache(tmp_path_factory.mktemp("c") / "cache.sqlite", TOPIC)
        try:
            cache.ingest(list(enumerate(log[:at])), at)
            with pytest.raises(CacheDivergedError) as raised:
                cache.ingest([(i, r) for i, r in enumerate(log) if i >= at], len(log))
            assert raised.value.divergence.offset == at
            assert cache.head == at
        finally:
            cache.close()


def test_a_cache_file_of_an_earlier_release_gets_its_marks(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    rows = chain("t1", 2)
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE events (notification_id INTEGER PRIMARY KEY, kafka_offset INTEGER "
        "NOT NULL UNIQUE, originator_id TEXT NOT NULL, originator_version INTEGER NOT NULL,"
        " topic TEXT NOT NULL, state BLOB NOT NULL, UNIQUE (originator_id, originator_version))"
    )
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.executemany(
        "INSERT INTO events VALUES (?,?,?,?,?,?)",
        [
            (i + 1, i, r.originator_id, r.originator_version, r.topic, r.state)
            for i, r in enumerate(rows)
        ],
    )
    conn.executemany("INSERT INTO meta VALUES (?,?)", [("topic", TOPIC), ("next_offset", "2")])
    conn.commit()
    conn.close()
    cache = EventCache(path, TOPIC)
    try:
        marks = (
            sqlite3.connect(path)
            .execute("SELECT event_id, chain_hash FROM events ORDER BY kafka_offset")
            .fetchall()
        )
        assert marks == [(mark_of(r).event_id, mark_of(r).hash) for r in rows]
        # The chain goes on from the marked records.
        third = link("t1", 3, mark_of(rows[1]).hash)
        assert cache.ingest([(2, third)], 3) == 1
    finally:
        cache.close()
