"""The SLA clock process on a real SQLite store: clocks follow tickets, at-risk and breach
are recorded and escalated exactly once (two processes, restarts), and a replay of the log
rebuilds the same SLA states and routing decisions without reading the wall clock."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import IntegrityError
from test_clock_world import ADMIN, LEVELS, MONDAY, QUEUE, FakeTime, World, forbidden_clock

from engine.domain import escalation as esc
from engine.domain import routing, sla
from engine.domain.commands.service_levels import (
    EscalationRuleBody,
    EscalationStepBody,
    PriorityTargetsBody,
    SetEscalationRules,
    SetRoutingPolicy,
    SetSlaPolicy,
)
from engine.domain.commands.tickets import (
    Assign,
    Comment,
    Pend,
    Reopen,
    Resolve,
    Resume,
    Start,
    Triage,
)
from engine.domain.priority import Priority
from engine.processes.sla_clock import start_clock

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path, FakeTime(MONDAY))
    w.staff()
    return w


def test_the_clock_follows_the_ticket_and_pending_time_is_not_counted(world: World) -> None:
    ticket = world.open("P2")  # Monday 09:00: 1 h first response, 8 h resolution
    lena = world.agent("Lena")
    world.desk.send(ADMIN, Assign(ticket_id=ticket, agent_id=world.agents["Lena"]))
    world.time.advance(minutes=10)
    world.desk.send(lena, Start(ticket_id=ticket))
    world.time.advance(minutes=50)  # Monday 10:00
    world.desk.send(lena, Pend(ticket_id=ticket, reason="waiting for logs", waiting_on="customer"))
    world.time.at = MONDAY + timedelta(days=1, hours=1)  # Tuesday 10:00
    world.desk.send(lena, Resume(ticket_id=ticket))
    world.time.advance(hours=1)
    world.desk.send(lena, Resolve(ticket_id=ticket, resolution_code="fixed", note="new profile"))
    clock = world.clock()
    clock.run_once()
    assert world.clock_events(ticket) == [
        "SlaClockStarted",
        "FirstResponseMet",
        "SlaClockPaused",
        "SlaClockResumed",
        "SlaMet",
    ]
    met = world.events(sla.clock_id(ticket))[-1]
    assert isinstance(met, sla.SlaMet)
    assert met.elapsed == 2 * HOUR and met.within_target  # the 23 h pending do not count
    view = world.desk.queries.ticket_sla(ADMIN, ticket)
    assert view.status == "met" and view.resolution.elapsed == 2 * HOUR
    assert view.first_response.elapsed == timedelta(minutes=10)
    # The clock's reactions are caused by the ticket events, stamped with their times.
    started = world.events(sla.clock_id(ticket))[0]
    assert started.causation_id == world.events(ticket)[1].event_id  # TicketTriaged
    assert started.occurred_at == MONDAY and started.actor == "system:sla-clock"


def clock_of(world: World, ticket: UUID) -> sla.SlaClock:
    clock = world.config.clock(ticket)
    assert clock is not None
    return clock


def escalations(world: World) -> list[esc.EscalationRaised]:
    return [e for e in world.log("EscalationRaised") if isinstance(e, esc.EscalationRaised)]


def test_at_risk_escalates_to_the_lead_once_and_a_breach_raises_the_next_level(
    world: World,
) -> None:
    rules = SetEscalationRules(
        queue=QUEUE,
        default=EscalationRuleBody(
            on_breach=EscalationStepBody(kind="functional", target_type="vendor", target="acme"),
            targets=["first_response"],
        ),
        reason="vendor owns the VPN",
    )
    world.desk.send(ADMIN, rules)
    ticket = world.open("P2")
    clock = world.clock()
    clock.run_once()
    world.time.at = MONDAY + timedelta(minutes=44)
    assert clock.run_once() == 0
    world.time.at = MONDAY + timedelta(minutes=46)  # 75% of the 1 h first response used
    assert clock.run_once() == 1
    assert clock.run_once() == 0  # asked again: nothing more
    at_risk = world.events(sla.clock_id(ticket))[-1]
    assert isinstance(at_risk, sla.SlaAtRisk) and at_risk.target == "first_response"
    (raised,) = escalations(world)
    assert (raised.kind, raised.target_type, raised.target, raised.level, raised.trigger) == (
        "hierarchical",
        "manager",
        f"agent:{world.agents['Lena']}",
        1,
        "sla_at_risk",
    )
    assert raised.causation_id == at_risk.event_id
    ticket_state = world.app.aggregates.ticket(ticket)
    assert ticket_state.escalation_level == 1
    # The breach raises the next level, to the configured target.
    world.time.at = MONDAY + timedelta(minutes=61)
    assert clock.run_once() == 1
    breached = world.events(sla.clock_id(ticket))[-1]
    assert isinstance(breached, sla.SlaBreached)
    _, second = escalations(world)
    assert (second.kind, second.target_type, second.target, second.level, second.trigger) == (
        "functional",
        "vendor",
        "acme",
        2,
        "sla_breached",
    )
    assert second.causation_id == breached.event_id
    assert world.app.aggregates.ticket(ticket).escalation_level == 2
    # The resolution target is not in this rule's targets: its at-risk escalates nothing.
    world.time.at = MONDAY + 7 * HOUR
    clock.run_once()
    assert world.clock_events(ticket)[-1] == "SlaAtRisk" and len(escalations(world)) == 2


def test_two_clock_processes_escalate_exactly_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    tickets = [world.open("P2") for _ in range(5)]
    twin = world.twin()
    first, second = world.clock(), twin.clock()
    first.catch_up()
    second.catch_up()
    # Both decide before either appends: the barrier holds each save until both are there.
    barrier = threading.Barrier(2, timeout=10)
    conflicts: list[UUID] = []
    for app in (world.app, twin.app):
        save = app.save

        def held(*events: Any, _save: Any = save, **kwargs: Any) -> Any:
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                pass  # The other process already saw that nothing is left to do.
            try:
                return _save(*events, **kwargs)
            except IntegrityError:
                conflicts.append(events[0].originator_id)
                raise

        monkeypatch.setattr(app, "save", held)
    world.time.at = MONDAY + timedelta(minutes=46)
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda c=c: results.append(c.tick())) for c in (first, second)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    barrier.abort()
    assert sum(results) == len(tickets)  # every append won by exactly one of them
    assert len(conflicts) == len(tickets)  # and lost by the other, which recorded nothing
    for ticket in tickets:
        assert world.clock_events(ticket) == ["SlaClockStarted", "SlaAtRisk"]
    raised = escalations(world)
    assert sorted(e.ticket_id for e in raised) == sorted(tickets)


def test_concurrent_clock_processes_record_each_fact_once(world: World) -> None:
    tickets = [world.open("P2") for _ in range(8)]
    twin = world.twin()
    processes = [world.clock(), twin.clock(), world.clock()]
    for minutes in (30, 46, 61, 7 * 60 + 1):
        world.time.at = MONDAY + timedelta(minutes=minutes)
        threads = [threading.Thread(target=p.run_once) for p in processes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    kinds = ["SlaAtRisk", "SlaBreached"]
    for ticket in tickets:
        recorded = [e for e in world.events(sla.clock_id(ticket)) if e.type_name in kinds]
        assert sorted((e.type_name, getattr(e, "target", "")) for e in recorded) == [
            ("SlaAtRisk", "first_response"),
            ("SlaAtRisk", "resolution"),
            ("SlaBreached", "first_response"),
        ]
    assert len(escalations(world)) == 3 * len(tickets)


def test_a_restarted_clock_process_records_nothing_twice(world: World) -> None:
    ticket = world.open("P2")
    world.time.at = MONDAY + timedelta(minutes=46)
    crashed = world.clock(world.tracking())
    assert crashed.run_once() == 1
    del crashed
    # Restart from the tracked position, then with the position lost (reads all again).
    for tracking in (world.tracking(), None):
        restarted = world.clock(tracking)
        assert restarted.run_once() == 0
    assert world.clock_events(ticket) == ["SlaClockStarted", "SlaAtRisk"]
    assert len(escalations(world)) == 1
    # A restart after the breach fell due records the breach, once.
    world.time.at = MONDAY + timedelta(minutes=61)
    assert world.clock(world.tracking()).run_once() == 1
    assert world.clock(None).run_once() == 0
    assert world.clock_events(ticket)[-1] == "SlaBreached" and len(escalations(world)) == 2


def test_a_lagging_process_records_what_fell_due_before_the_ticket_moved_on(world: World) -> None:
    ticket = world.open("P2")
    lena = world.agent("Lena")
    world.desk.send(ADMIN, Assign(ticket_id=ticket, agent_id=world.agents["Lena"]))
    world.time.at = MONDAY + 2 * HOUR
    world.desk.send(lena, Start(ticket_id=ticket))  # the first response comes an hour late
    clock = world.clock(now=forbidden_clock)
    clock.catch_up()  # no tick: the breach is found from the events' own times
    events = world.events(sla.clock_id(ticket))
    assert [e.type_name for e in events] == [
        "SlaClockStarted",
        "SlaAtRisk",
        "SlaBreached",
        "FirstResponseMet",
    ]
    met = events[-1]
    assert isinstance(met, sla.FirstResponseMet) and not met.within_target
    assert all(e.occurred_at == MONDAY + 2 * HOUR for e in events[1:])


def test_a_retriage_retargets_and_a_reopen_resumes_the_resolution_clock(world: World) -> None:
    ticket = world.open("P4")  # 8 h / 40 h
    lena = world.agent("Lena")
    world.desk.send(ADMIN, Assign(ticket_id=ticket, agent_id=world.agents["Lena"]))
    world.time.advance(minutes=30)
    world.desk.send(
        lena, Triage(ticket_id=ticket, impact=LEVELS["P2"][0], urgency=LEVELS["P2"][1])
    )  # upgrade to P2: 1 h / 8 h
    world.time.advance(minutes=30)
    world.desk.send(lena, Start(ticket_id=ticket))
    world.time.advance(hours=1)
    world.desk.send(
        lena, Resolve(ticket_id=ticket, resolution_code="fixed", note="done")
    )  # Monday 11:00
    world.time.at = MONDAY + timedelta(days=1)  # Tuesday 09:00
    world.desk.send(ADMIN, Reopen(ticket_id=ticket, reason="still broken"))
    clock = world.clock()
    clock.run_once()
    state = world.config.clock(ticket)
    assert state is not None
    assert (state.term, state.priority, state.phase) == (2, Priority.P2, "running")
    # Two business hours were used before the resolution; six remain from Tuesday 09:00.
    assert state.resolution.due_at == MONDAY + timedelta(days=1, hours=6)
    assert state.first_response.met_at == MONDAY + HOUR
    assert world.desk.queries.ticket_sla(ADMIN, ticket).resolution.elapsed == 2 * HOUR


def test_the_policy_version_in_force_is_recorded_and_later_changes_leave_it_alone(
    world: World,
) -> None:
    before = world.open("P3")
    world.time.advance(minutes=1)
    targets = {
        priority: PriorityTargetsBody(
            first_response_minutes=t.first_response // MINUTE,
            resolution_minutes=t.resolution // MINUTE,
            calendar=t.calendar,
        )
        for priority, t in sla.DEFAULT_POLICY.targets.items()
    }
    targets[Priority.P3] = PriorityTargetsBody(
        first_response_minutes=HOUR // MINUTE, resolution_minutes=8 * HOUR // MINUTE
    )
    world.desk.send(ADMIN, SetSlaPolicy(targets=targets, at_risk_share=0.5, reason="faster P3"))
    world.time.advance(minutes=1)
    after = world.open("P3")
    world.clock().run_once()
    old, new = world.config.clock(before), world.config.clock(after)
    assert old is not None and new is not None
    assert (old.policy_version, old.first_response.duration) == (0, 4 * HOUR)
    assert (new.policy_version, new.first_response.duration, new.at_risk_share) == (
        1,
        HOUR,
        0.5,
    )


def test_a_full_replay_rebuilds_identical_sla_states_and_routing_decisions(
    world: World, tmp_path: Path
) -> None:
    world.desk.send(
        ADMIN, SetRoutingPolicy(queue=QUEUE, policy="least_loaded", reason="spread the load")
    )
    tickets = [world.open(p) for p in ("P1", "P2", "P3", "P4", "P2", "P3")]
    clock = world.clock(world.tracking())
    lena = world.agent("Lena")
    for minutes in (5, 12, 47, 70, 300, 2000):
        world.time.at = MONDAY + timedelta(minutes=minutes)
        if minutes == 70:
            assignee = world.app.aggregates.assignment(tickets[1]).agent_id
            assert assignee is not None
            world.desk.send(lena, Start(ticket_id=tickets[1]))
            world.desk.send(lena, Pend(ticket_id=tickets[1], reason="logs", waiting_on="customer"))
        clock.run_once()
    live = {t: sla.view(clock_of(world, t), world.time.at) for t in tickets}
    decisions = list(world.log("RoutingDecided", "RoutingDeferred"))
    assert len(decisions) == len(tickets)
    # Replay: a fresh process over the whole log with a clock that must not be read.
    replayer = world.twin().clock(None, now=forbidden_clock)
    assert replayer.catch_up() > 0
    assert replayer.app.recorder.max_notification_id() == world.app.recorder.max_notification_id()
    for ticket in tickets:
        events = replayer.app.aggregates.events(sla.clock_id(ticket))
        rebuilt = sla.sla_state(events, world.time.at)
        assert rebuilt == live[ticket]
        assert replayer.clocks.get(ticket) in (None, sla.fold(events))
    replayed = list(world.twin().log("RoutingDecided", "RoutingDeferred"))
    assert replayed == decisions
    routed = [e for e in decisions if isinstance(e, routing.RoutingDecided)]
    assert {e.policy for e in routed} == {"least_loaded"} and all(e.candidates for e in routed)


def test_at_risk_tells_the_lead_at_the_current_level_and_each_breach_goes_up_one(
    world: World,
) -> None:
    ticket = world.open("P2")  # default rules: both targets; breach to the desk manager
    clock = world.clock()
    steps = [(46, 1, "sla_at_risk"), (61, 2, "sla_breached"), (6 * 60 + 1, 2, "sla_at_risk")]
    steps.append((8 * 60 + 1, 3, "sla_breached"))
    for minutes, level, trigger in steps:
        world.time.at = MONDAY + timedelta(minutes=minutes)
        assert clock.run_once() == 1
        raised = escalations(world)[-1]
        assert (raised.level, raised.trigger) == (level, trigger)
        assert world.app.aggregates.ticket(ticket).escalation_level == level
    lead, manager = f"agent:{world.agents['Lena']}", "service-desk-manager"
    assert [e.target for e in escalations(world)] == [lead, manager, lead, manager]


def test_an_upgrade_that_is_late_at_once_is_recorded_with_it_and_never_reread(
    world: World,
) -> None:
    ticket = world.open("P4")  # 09:00, business hours: nothing falls due before 15:00
    lena = world.agent("Lena")
    world.time.at = MONDAY + HOUR
    world.desk.send(
        lena, Comment(ticket_id=ticket, body="looking", internal=True)
    )  # no clock change
    world.time.at = MONDAY + 3 * HOUR
    world.desk.send(
        lena, Triage(ticket_id=ticket, impact=LEVELS["P1"][0], urgency=LEVELS["P1"][1])
    )  # P1 24x7, from 09:00
    world.clock(now=forbidden_clock).catch_up()  # no tick: found from the events' times
    recorded = world.events(sla.clock_id(ticket))
    assert [(e.type_name, getattr(e, "target", None)) for e in recorded] == [
        ("SlaClockStarted", None),
        ("SlaClockStarted", None),
        ("SlaAtRisk", "first_response"),
        ("SlaBreached", "first_response"),
        ("SlaAtRisk", "resolution"),  # 3 of 4 hours used at 12:00
    ]
    assert all(e.occurred_at == MONDAY + 3 * HOUR for e in recorded[1:])
    assert [e.level for e in escalations(world)] == [1, 2, 2]
    # A process that lost its tracking rereads the 10:00 comment: the P1 terms were not in
    # force then, so it judges nothing by them, and records nothing at all.
    reread = world.clock(now=forbidden_clock)
    assert reread.catch_up() > 0
    assert len(world.events(sla.clock_id(ticket))) == len(recorded)


def test_the_clock_runs_in_a_thread_until_stopped(world: World) -> None:
    stopping = threading.Event()
    process = start_clock(world.app, world.path, world.time, interval_s=0.01, stopping=stopping)
    try:
        ticket = world.open("P2")
        world.time.at = MONDAY + timedelta(minutes=46)
        deadline = time.monotonic() + 10
        while (
            world.clock_events(ticket) != ["SlaClockStarted", "SlaAtRisk"]
            or process.position != world.app.recorder.max_notification_id()
        ):  # until it has recorded the at-risk and read its own events back
            assert time.monotonic() < deadline, world.clock_events(ticket)
            time.sleep(0.01)
    finally:
        stopping.set()
        process.stop()
    assert (world.path / "clock.sqlite").exists()
    assert world.tracking().max_tracking_id("sla-clock") == world.app.recorder.max_notification_id()
