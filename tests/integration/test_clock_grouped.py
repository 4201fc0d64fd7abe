"""The clock process appends the reactions of many tickets together (one commit), and
still records each exactly once when another process records some of them first."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError, Tracking
from eventsourcing.popo import POPOTrackingRecorder
from test_clock_world import MONDAY, FakeTime, World

from engine.domain import sla
from engine.processes.sla_clock import TRACKING_NAME, SlaClockProcess


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path, FakeTime(MONDAY))
    w.staff()
    return w


def count_saves(world: World, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of events of each append of ``world.app``, conflicting or not."""
    sizes: list[int] = []
    save = world.app.save

    def counted(*events: Any, **kwargs: Any) -> Any:
        sizes.append(len(events))
        return save(*events, **kwargs)

    monkeypatch.setattr(world.app, "save", counted)
    return sizes


def assert_started_once(world: World, tickets: list[UUID]) -> None:
    for ticket in tickets:
        assert world.clock_events(ticket) == ["SlaClockStarted"]
        started = world.events(sla.clock_id(ticket))[0]
        triaged = world.events(ticket)[1]
        assert started.causation_id == triaged.event_id
        assert started.occurred_at == triaged.occurred_at


def test_clock_starts_of_many_tickets_are_one_append(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    tickets = [world.open("P2") for _ in range(5)]
    sizes = count_saves(world, monkeypatch)
    world.clock().catch_up()
    assert sizes == [5]
    assert_started_once(world, tickets)


def test_a_group_capped_at_group_size_appends_in_several_commits(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    tickets = [world.open("P2") for _ in range(5)]
    sizes = count_saves(world, monkeypatch)
    SlaClockProcess(world.app, world.time, group_size=2).catch_up()
    assert sizes == [2, 2, 1]
    assert_started_once(world, tickets)


def test_a_conflicting_group_is_decided_again_ticket_by_ticket_and_records_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    tickets = [world.open("P2") for _ in range(5)]
    # Another process follows the log from the third ticket on.
    third = next(
        n.id
        for n in world.app.recorder.select_notifications(1, 1000, topics=["TicketOpened"])
        if n.originator_id == tickets[2]
    )
    tracking = POPOTrackingRecorder()
    tracking.insert_tracking(Tracking(TRACKING_NAME, third - 1))
    twin = world.twin()
    other = twin.clock(tracking)
    # It records its reactions after ours are decided and before they are appended.
    sizes: list[int] = []
    conflicts: list[int] = []
    save = world.app.save

    def raced(*events: Any, **kwargs: Any) -> Any:
        sizes.append(len(events))
        if len(sizes) == 1:
            other.catch_up()
        try:
            return save(*events, **kwargs)
        except IntegrityError:
            conflicts.append(len(events))
            raise

    monkeypatch.setattr(world.app, "save", raced)
    ours = world.clock()
    ours.catch_up()
    # Our group of five conflicted and recorded nothing; then each ticket was decided
    # again on a fresh load: the first two alone, the other three were already started.
    assert conflicts == [5]
    assert sizes == [5, 1, 1]
    assert_started_once(world, tickets)
    # Reading on (the five clock starts) and a restarted process reading the whole log
    # record nothing.
    ours.catch_up()
    assert ours.position == world.app.recorder.max_notification_id()
    world.clock().catch_up()
    assert sizes == [5, 1, 1]
    assert_started_once(world, tickets)


def test_a_store_error_in_the_group_append_leaves_the_position_before_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    tickets = [world.open("P2") for _ in range(3)]
    tracking = world.tracking()
    clock = world.clock(tracking)
    start = clock.position
    save = world.app.save

    def busy(*events: Any, **kwargs: Any) -> Any:
        raise OperationalError("database is locked")

    monkeypatch.setattr(world.app, "save", busy)
    with pytest.raises(OperationalError):
        clock.catch_up()
    # Nothing recorded, and the decided reactions are not passed over.
    assert clock.position < min(
        n.id
        for n in world.app.recorder.select_notifications(1, 1000, topics=["TicketTriaged"])
        if n.originator_id in tickets
    )
    assert (tracking.max_tracking_id(TRACKING_NAME) or 0) <= max(start, clock.position)
    monkeypatch.setattr(world.app, "save", save)
    clock.catch_up()
    assert_started_once(world, tickets)
