"""Property tests: random valid command sequences through the deciders; every view
built incrementally (small batches, tiny caches) equals a from-scratch rebuild, the
audit fold agrees with the domain fold, and ``as_of`` equals a replay to that point."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.popo import POPOApplicationRecorder
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.domain import assignment, ticket
from engine.domain.base import DomainError, DomainEvent
from engine.domain.ticket import Ticket
from engine.integrity.keystore import MemoryKeyStore
from engine.integrity.personal import ERASED
from engine.projections import VIEW_NAMES, Views
from engine.projections.audit.fold import TICKET_DEFAULTS, Timeline
from engine.projections.kit.log_reader import LogReader
from tests.support.simulation import Desk

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
steps = st.lists(
    st.tuples(
        st.integers(0, 10_000),  # which command
        st.integers(0, 10_000),  # which ticket / parameters
        st.integers(0, 6 * 24 * 60),  # minutes since the previous command
    ),
    min_size=1,
    max_size=45,
)


def play(desk: Desk, script: list[tuple[int, int, int]], after_each: Any = None) -> None:
    for choice, pick, gap in script:
        desk.advance(gap)  # with SLA clocks, records what fell due meanwhile
        try:
            desk.play(choice, pick)
        except DomainError:
            pass  # refused: the command recorded nothing
        if after_each is not None:
            after_each()


def dumps(views: Views) -> dict[str, Any]:
    return {name: views._live[name].view.dump() for name in VIEW_NAMES}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=steps, batch=st.integers(1, 6), seed=st.integers(0, 2**32))
@example(  # two tickets of user0, one worked on, then user0 is erased
    script=[(9, 3, 10), (9, 6, 10), (2, 0, 30), (97, 3, 10), (4, 0, 10)], batch=2, seed=1
)
@example(  # tickets left for days: their SLA targets fall at risk and breach
    script=[(9, 3, 10), (9, 6, 10), (9, 1, 3000), (2, 0, 30), (4, 1, 5000), (9, 2, 8000)],
    batch=3,
    seed=2,
)
def test_views_built_incrementally_equal_a_rebuild(
    script: list[tuple[int, int, int]], batch: int, seed: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        recorder, keys = POPOApplicationRecorder(), MemoryKeyStore()
        # The desk runs the SLA clocks too: their events are in the mix.
        desk = Desk(recorder, T0, seed=seed, keys=keys, sla=True)
        desk.setup()
        live = Views(
            recorder,
            Path(tmp) / "live",
            batch_size=batch,
            bulk_batch_size=batch,
            cache_rows=1,
            keys=keys,
        )
        # Apply each command's events as they are recorded, in small batches.
        play(desk, script, after_each=live.catch_up)
        fresh = Views(recorder, Path(tmp) / "fresh", keys=keys)
        fresh.catch_up()
        try:
            assert dumps(live) == dumps(fresh)
        finally:
            live.close()
            fresh.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    script=steps,
    batch=st.integers(1, 40),
    cache_rows=st.sampled_from([1, 2, 5, 10_000]),
    seed=st.integers(0, 2**32),
)
@example(  # two tickets of user0, one worked on, then user0 is erased
    script=[(9, 3, 10), (9, 6, 10), (2, 0, 30), (97, 3, 10), (4, 0, 10)],
    batch=2,
    cache_rows=1,
    seed=1,
)
def test_a_rebuild_that_holds_its_rows_equals_the_live_views(
    script: list[tuple[int, int, int]], batch: int, cache_rows: int, seed: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        recorder, keys = POPOApplicationRecorder(), MemoryKeyStore()
        desk = Desk(recorder, T0, seed=seed, keys=keys, sla=True)
        desk.setup()
        live = Views(recorder, Path(tmp) / "live", batch_size=3, cache_rows=1, keys=keys)
        play(desk, script, after_each=live.catch_up)
        expected = dumps(live)
        # A rebuild holds rows in its caches and writes them when let go of (tiny
        # caches: all the time) or at the end; its views equal the live ones.
        live.bulk_batch_size = batch
        live.cache_rows = cache_rows
        live.rebuild()
        try:
            assert dumps(live) == expected
            assert not any(p.holding for p in live._live.values())
        finally:
            live.close()


def _comparable(state: Ticket) -> dict[str, Any]:
    data = state.model_dump(mode="json")
    data["lifecycle"] = state.lifecycle.value
    data["links"] = [list(link) for link in data["links"]]
    data["open_escalations"] = [list(e) for e in data["open_escalations"]]
    return data


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=steps, seed=st.integers(0, 2**32), cut=st.floats(0, 1))
@example(script=[(9, 3, 10), (9, 6, 10), (2, 0, 30), (97, 3, 10), (4, 0, 10)], seed=1, cut=0.9)
def test_audit_view_agrees_with_the_domain(
    script: list[tuple[int, int, int]], seed: int, cut: float
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        recorder, keys = POPOApplicationRecorder(), MemoryKeyStore()
        desk = Desk(recorder, T0, seed=seed, keys=keys)
        desk.setup()
        play(desk, script)
        views = Views(recorder, Path(tmp), keys=keys)
        views.catch_up()
        try:
            # Folding each ticket's audit rows gives the fields of the domain's Ticket.
            rows = sorted(views._live["audit"].view.dump()["history"])
            records = LogReader(recorder, keys).records(row[0] for row in rows)
            timelines: dict[str, Timeline] = {}
            for row in rows:
                ticket_id = row[1]
                timeline = timelines.setdefault(ticket_id, Timeline(ticket_id))
                timeline.apply(records[row[0]])
            for tid, state in desk.tickets.items():
                flat = timelines[str(tid)].ticket
                assert flat is not None
                expected = _comparable(_erased(state, desk.erased))
                for name in TICKET_DEFAULTS.keys() - {"_assignee"}:
                    assert flat[name] == expected[name], name
                assignee = desk.assignee(tid)
                assert flat["_assignee"] == (None if assignee is None else str(assignee))

                # The history's changes, replayed, give the same fields.
                replayed: dict[str, Any] = {}
                for item in views.history(tid):
                    if item.aggregate_type == "Ticket":
                        replayed.update({c.field: c.to for c in item.changes})
                for name in ("lifecycle", "priority", "reopen_count", "escalation_level"):
                    assert replayed.get(name, TICKET_DEFAULTS[name]) == expected[name], name
                status = ticket.public_status(state, assignee)
                statuses = [
                    c.to
                    for item in views.history(tid)
                    if item.aggregate_type != "Escalation"
                    for c in item.changes
                    if c.field == "status"
                ]
                assert statuses[-1] == status

            # as_of a position equals folding the ticket's events up to it.
            events: list[DomainEvent] = desk.recorded
            position = int(cut * len(events))
            for tid in desk.tickets:
                replay = _replay(events[:position], tid)
                snapshot = views.ticket_as_of(tid, position=position)
                if replay is None:
                    assert snapshot is None
                else:
                    assert snapshot is not None
                    state, routing = replay
                    assert snapshot.ticket == _erased(state, desk.erased)
                    assert snapshot.assignment == routing
                    assert snapshot.status == ticket.public_status(state, routing.agent_id)

            # as_of a moment equals folding the events that occurred by then.
            moment = T0 + timedelta(minutes=int(cut * sum(g for *_, g in script)))
            for tid in desk.tickets:
                upto = [e for e in events if e.occurred_at <= moment]
                replay = _replay(upto, tid)
                snapshot = views.ticket_as_of(tid, at=moment)
                assert (snapshot is None) == (replay is None)
                if snapshot is not None and replay is not None:
                    assert snapshot.ticket == _erased(replay[0], desk.erased)
        finally:
            views.close()


def _erased(state: Ticket, erased: set[str]) -> Ticket:
    """The ticket as read once its requester's key is destroyed."""
    if state.requester_id not in erased:
        return state
    fields = (
        "title", "description", "requester_name", "requester_email", "csat_comment",
        "priority_override_reason", "resolution_note", "pending_reason", "cancel_reason",
    )  # fmt: skip
    update = {f: ERASED for f in fields if getattr(state, f) is not None}
    return state.model_copy(update=update)


def _replay(
    events: list[DomainEvent], ticket_id: UUID
) -> tuple[Ticket, assignment.Assignment] | None:
    state: Ticket | None = None
    routing = assignment.empty(ticket_id)
    for event in events:
        if event.aggregate_type == "Ticket" and event.originator_id == ticket_id:
            state = ticket.evolve(state, event)
        elif event.aggregate_type == "Assignment" and getattr(event, "ticket_id") == ticket_id:  # noqa: B009
            routing = assignment.evolve(routing, event)
    return None if state is None else (state, routing)
