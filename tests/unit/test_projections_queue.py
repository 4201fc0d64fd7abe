"""Queue view: rows, counts, order, filters, pages, workload and search, fed with
events made by the domain deciders at pinned times."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.popo import POPOApplicationRecorder

from engine.domain import routing
from engine.domain.priority import Level
from engine.integrity.keystore import MemoryKeyStore
from engine.integrity.personal import ERASED
from engine.projections import InvalidCursorError, Views
from tests.support.simulation import Desk

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HIGH, MEDIUM, LOW = Level.HIGH, Level.MEDIUM, Level.LOW


class World:
    def __init__(self, tmp: Path, sla: bool = False) -> None:
        self.keys = MemoryKeyStore()
        self.recorder = POPOApplicationRecorder()
        self.desk = Desk(self.recorder, T0, seed=1, keys=self.keys, sla=sla)
        self.desk.create_queue("service-desk")
        self.desk.create_queue("network")
        self.ann = self.desk.register_agent("Ann", ["service-desk"], 3)
        self.bo = self.desk.register_agent("Bo", ["service-desk", "network"], 5)
        self.views = Views(self.recorder, tmp, keys=self.keys)

    def open(self, title: str, impact: Level, urgency: Level, queue: str = "service-desk",
             requester: str = "rita", after: float = 10) -> UUID:  # fmt: skip
        self.desk.advance(after)
        return self.desk.open(title, requester, queue, impact, urgency)

    def sync(self) -> Views:
        self.views.catch_up()
        return self.views


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.views.close()


@pytest.fixture
def sla_world(tmp_path: Path) -> Iterator[World]:
    """The desk runs each ticket's SLA clock (and records what falls due as time moves)."""
    w = World(tmp_path, sla=True)
    yield w
    w.views.close()


def test_a_ticket_row_shows_the_public_status_and_its_routing(world: World) -> None:
    tid = world.open("Printer jam", HIGH, MEDIUM)
    row = world.sync().ticket(tid)
    assert row is not None
    assert (row.status, row.priority, row.queue, row.assignee_id) == (
        "new",
        "P2",
        "service-desk",
        None,
    )
    assert row.opened_at == T0 + timedelta(minutes=10)
    assert row.title == "Printer jam" and row.requester_name == "Rita"

    # Assigned while new: the public status is "assigned".
    world.desk.assign(tid, world.ann)
    row = world.sync().ticket(tid)
    assert row is not None
    assert (row.status, row.assignee_id, row.assignee_name, row.accepted) == (
        "assigned", world.ann, "Ann", False,
    )  # fmt: skip

    # Released: back to new, unassigned.
    world.desk.release(tid)
    row = world.sync().ticket(tid)
    assert row is not None and (row.status, row.assignee_id) == ("new", None)

    world.desk.assign(tid, world.bo)
    world.desk.accept(tid)
    world.desk.start(tid)
    world.desk.pend(tid)
    row = world.sync().ticket(tid)
    assert row is not None and (row.status, row.accepted, row.assignee_name) == (
        "pending", True, "Bo",
    )  # fmt: skip


def test_queues_count_active_tickets_by_status_and_priority(world: World) -> None:
    a = world.open("A", HIGH, HIGH)  # P1
    b = world.open("B", LOW, LOW)  # P4
    world.open("C", LOW, LOW, queue="network")  # P4 in network
    d = world.open("D", MEDIUM, MEDIUM)  # P3, resolved below: not active
    world.desk.assign(a, world.ann)
    world.desk.escalate(b)
    world.desk.assign(d, world.bo)
    world.desk.resolve(d)
    summaries = {q.name: q for q in world.sync().queues()}
    desk = summaries["service-desk"]
    assert desk.active == 2
    assert desk.by_status == {"assigned": 1, "new": 1}
    assert desk.by_priority == {"P1": 1, "P4": 1}
    assert (desk.unassigned, desk.escalated) == (1, 1)
    assert desk.description == "the service-desk team"
    assert summaries["network"].active == 1

    # Counts follow changes: reopening D makes it active again, in its queue.
    world.desk.reopen(d)
    desk = {q.name: q for q in world.sync().queues()}["service-desk"]
    assert desk.active == 3 and desk.by_status == {"assigned": 2, "new": 1}


def test_a_queue_page_is_ordered_by_priority_then_age(world: World) -> None:
    p4_old = world.open("p4 old", LOW, LOW)
    p1 = world.open("p1", HIGH, HIGH)
    p4_new = world.open("p4 new", LOW, LOW)
    p2 = world.open("p2", HIGH, MEDIUM)
    p1_new = world.open("p1 new", HIGH, HIGH)
    rows, cursor = world.sync().queue_tickets("service-desk")
    assert [r.ticket_id for r in rows] == [p1, p1_new, p2, p4_old, p4_new]
    assert cursor is None


def test_pages_cover_every_ticket_once(world: World) -> None:
    ids = {world.open(f"t{i}", (HIGH, MEDIUM, LOW)[i % 3], MEDIUM) for i in range(23)}
    views = world.sync()
    seen: list[UUID] = []
    rows, cursor = views.queue_tickets("service-desk", limit=5)
    seen += [r.ticket_id for r in rows]
    while cursor is not None:
        rows, cursor = views.queue_tickets("service-desk", limit=5, cursor=cursor)
        seen += [r.ticket_id for r in rows]
    assert len(seen) == len(set(seen)) == 23 and set(seen) == ids
    everything, _ = views.queue_tickets("service-desk", limit=50)
    assert [r.ticket_id for r in everything] == seen


def test_queue_filters(world: World) -> None:
    a = world.open("a", HIGH, HIGH)
    b = world.open("b", LOW, LOW)
    c = world.open("c", LOW, LOW)
    world.desk.assign(a, world.ann)
    world.desk.assign(b, world.bo)
    world.desk.accept(b)
    world.desk.start(b)
    world.desk.escalate(c)
    views = world.sync()

    def ids(**filters: object) -> list[UUID]:
        return [r.ticket_id for r in views.queue_tickets("service-desk", **filters)[0]]  # type: ignore[arg-type]

    assert ids(status="assigned") == [a]
    assert ids(status="in_progress") == [b]
    assert ids(priority="P4") == [b, c]
    assert ids(assignee=world.bo) == [b]
    assert ids(assignee=str(world.ann)) == [a]
    assert ids(unassigned=True) == [c]
    assert ids(unassigned=False) == [a, b]
    assert ids(escalated=True) == [c]
    assert ids(escalated=False, priority="P4") == [b]

    # A closed status lists inactive tickets.
    world.desk.resolve(b)
    assert [
        r.ticket_id for r in world.sync().queue_tickets("service-desk", status="resolved")[0]
    ] == [b]


def test_bad_cursors_and_limits_are_refused(world: World) -> None:
    world.open("a", HIGH, HIGH)
    views = world.sync()
    with pytest.raises(InvalidCursorError):
        views.queue_tickets("service-desk", cursor="not-a-cursor")
    world.open("b", HIGH, HIGH)
    _, cursor = world.sync().search_tickets(limit=1)
    assert cursor is not None
    with pytest.raises(InvalidCursorError):  # a search cursor is not a queue cursor
        views.queue_tickets("service-desk", cursor=cursor)
    with pytest.raises(ValueError):
        views.queue_tickets("service-desk", limit=0)


def test_agent_workload(world: World) -> None:
    a = world.open("a", HIGH, HIGH)
    b = world.open("b", LOW, LOW)
    c = world.open("c", MEDIUM, MEDIUM)
    for tid in (a, b, c):
        world.desk.assign(tid, world.bo)
    world.desk.resolve(c)
    workload = world.sync().agent_workload(world.bo)
    assert workload is not None
    assert (workload.name, workload.capacity, workload.load) == ("Bo", 5, 2)
    assert workload.by_priority == {"P1": 1, "P4": 1}
    assert [t.ticket_id for t in workload.tickets] == [a, b]
    assert workload.queues == ["network", "service-desk"] and workload.agent_active

    idle = world.views.agent_workload(world.ann)
    assert idle is not None and idle.load == 0 and idle.tickets == []
    assert world.views.agent_workload(UUID(int=7)) is None


def test_search(world: World) -> None:
    first = world.open("VPN drops every hour", HIGH, HIGH, requester="rita")
    second = world.open("Printer jam", LOW, LOW, requester="sam", after=60 * 24)
    third = world.open("Ünïcode VPN trouble", LOW, LOW, requester="rita", queue="network")
    views = world.sync()

    def ids(**filters: object) -> list[UUID]:
        return [r.ticket_id for r in views.search_tickets(**filters)[0]]  # type: ignore[arg-type]

    assert ids(requester="rita") == [third, first]  # newest first
    assert ids(text="vpn") == [third, first]
    assert ids(text="ÜNÏCODE") == [third]
    assert ids(queue="network") == [third]
    assert ids(priority="P1") == [first]
    assert ids(status="new", requester="rita", text="every") == [first]
    assert ids(created_from=T0 + timedelta(hours=1)) == [third, second]
    assert ids(created_to=T0 + timedelta(hours=1)) == [first]
    page, cursor = views.search_tickets(limit=2)
    assert cursor is not None
    rest, end = views.search_tickets(limit=2, cursor=cursor)
    assert [r.ticket_id for r in rest] == [first] and end is None


def test_erasure_blanks_the_requesters_personal_data(world: World) -> None:
    tid = world.open("Rita's laptop", HIGH, HIGH, requester="rita")
    other = world.open("Sam's phone", HIGH, HIGH, requester="sam")
    views = world.sync()
    assert views.search_tickets(text="laptop")[0][0].ticket_id == tid
    world.desk.erase("rita")
    views = world.sync()
    row = views.ticket(tid)
    assert row is not None and (row.title, row.requester_name) == (ERASED, ERASED)
    assert views.search_tickets(text="laptop")[0] == []
    kept = views.ticket(other)
    assert kept is not None and kept.title == "Sam's phone"


# --- SLA ----------------------------------------------------------------------------


def at(hh: int, mm: int, days: int = 0) -> datetime:
    return T0.replace(hour=hh, minute=mm) + timedelta(days=days)


def sla_desk(w: World) -> dict[str, UUID]:
    """Monday from 09:00 (business hours 09-17 UTC; P1 runs 24x7). By 10:10:

    c  P1 opened 09:30, first response due 09:45: breached
    b  P2 opened 09:20, first response due 10:20 (at risk from 10:05)
    a  P4 opened 09:10, first response due Tuesday 09:10
    d  P4 opened 09:40, first response due Tuesday 09:40
    e  P2 opened 09:50, worked on and pending: no due time while paused
    f  P4 opened 10:00, worked on and pending
    """
    ids = {
        "a": w.open("a", LOW, LOW),
        "b": w.open("b", HIGH, MEDIUM),
        "c": w.open("c", HIGH, HIGH),
        "d": w.open("d", LOW, LOW),
    }
    for name, impact in (("e", HIGH), ("f", LOW)):
        ids[name] = tid = w.open(name, impact, MEDIUM if impact is HIGH else LOW)
        w.desk.assign(tid, w.ann)
        w.desk.accept(tid)
        w.desk.start(tid)
        w.desk.pend(tid)
    w.desk.advance(10)  # 10:10: the clock records what fell due
    return ids


def test_the_queue_puts_breached_first_then_due_time_then_priority(sla_world: World) -> None:
    ids = sla_desk(sla_world)
    rows, _ = sla_world.sync().queue_tickets("service-desk")
    assert [r.ticket_id for r in rows] == [ids[n] for n in "cbadef"]
    by = {r.ticket_id: r for r in rows}
    c, b, a, e = by[ids["c"]], by[ids["b"]], by[ids["a"]], by[ids["e"]]
    assert (c.sla_status, c.sla_breached, c.sla_at_risk) == ("breached", True, True)
    assert c.sla_due_at == at(9, 45)
    assert (b.sla_status, b.sla_breached, b.sla_at_risk) == ("at_risk", False, True)
    assert b.sla_due_at == b.sla_first_response_due_at == at(10, 20)
    assert b.sla_resolution_due_at == at(9, 20, days=1)  # 8 business hours
    assert (a.sla_status, a.sla_due_at, a.sla_policy_version) == ("on_track", at(9, 10, 1), 0)
    # Paused: no due time (so after every ticket with one), then by priority.
    assert (e.sla_status, e.sla_due_at, e.sla_breached) == ("paused", None, False)
    assert e.sla_first_response_due_at is None and e.sla_resolution_due_at is None

    # Pages follow the same order across the cursor.
    first, cursor = sla_world.views.queue_tickets("service-desk", limit=3)
    rest, _ = sla_world.views.queue_tickets("service-desk", limit=3, cursor=cursor)
    assert [r.ticket_id for r in first + rest] == [ids[n] for n in "cbadef"]

    # Resuming e (at 10:10) gives it a due time again, its 20 minutes paused excluded:
    # resolution Tuesday 10:10, after d's 09:40; f (paused) stays last.
    sla_world.desk.resume(ids["e"])
    rows, _ = sla_world.sync().queue_tickets("service-desk")
    assert [r.ticket_id for r in rows] == [ids[n] for n in "cbadef"]
    assert (rows[4].sla_status, rows[4].sla_due_at) == ("on_track", at(10, 10, days=1))
    # Resolving c meets its clock: no longer in the active queue, its row says met late.
    sla_world.desk.assign(ids["c"], sla_world.bo)
    sla_world.desk.resolve(ids["c"])
    c_row = sla_world.sync().ticket(ids["c"])
    assert c_row is not None
    assert (c_row.sla_status, c_row.sla_due_at, c_row.sla_breached) == ("met", None, False)


def test_the_sla_filter(sla_world: World) -> None:
    ids = sla_desk(sla_world)
    views = sla_world.sync()
    breached, _ = views.queue_tickets("service-desk", sla="breached")
    at_risk, _ = views.queue_tickets("service-desk", sla="at_risk")
    assert [r.ticket_id for r in breached] == [ids["c"]]
    assert [r.ticket_id for r in at_risk] == [ids["b"]]
    assert views.queue_tickets("network", sla="breached")[0] == []

    # Time passes: b breaches too; a falls at risk (6 of its 8 business hours used by
    # 15:10), d not yet (15:40).
    sla_world.desk.advance(5 * 60 + 10)  # 15:20
    breached, _ = sla_world.sync().queue_tickets("service-desk", sla="breached")
    at_risk, _ = sla_world.views.queue_tickets("service-desk", sla="at_risk")
    assert [r.ticket_id for r in breached] == [ids["c"], ids["b"]]
    assert [r.ticket_id for r in at_risk] == [ids["a"]]


def test_a_deferred_routing_says_why_until_the_ticket_is_assigned(world: World) -> None:
    tid = world.open("Printer jam", HIGH, MEDIUM)
    decision = routing.RoutingDecision(
        queue="service-desk", policy="least_loaded", policy_version=1, candidates=(),
        agent_id=None, tie_break="none", explanation="no eligible agent: Ann at capacity",
    )  # fmt: skip
    cursor = routing.RoutingCursor(queue="service-desk")
    desk = world.desk
    desk.record(routing.route(decision, desk.assignment(tid), desk.agents, cursor, desk.meta()))
    row = world.sync().ticket(tid)
    assert row is not None and row.routing_note == "no eligible agent: Ann at capacity"
    assert row.assignee_id is None

    desk.assign(tid, world.bo)
    row = world.sync().ticket(tid)
    assert row is not None and row.routing_note is None
