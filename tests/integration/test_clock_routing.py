"""Automatic routing by the clock process on a real SQLite store: 1,000 tickets spread
evenly, capacity and availability respected, deferred tickets routed once someone can
take them, and manual queues left alone."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from test_clock_world import ADMIN, MONDAY, FakeTime, World

from engine.domain import assignment as asg
from engine.domain import availability as av
from engine.domain import routing
from engine.domain.assignment import RoutingPolicy
from engine.domain.calendar import BusinessCalendar, Shifts
from engine.domain.directory import Role

QUEUE = "desk"


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path, FakeTime(MONDAY))
    w.desk.create_queue(ADMIN, QUEUE, None)
    return w


def spread(world: World, policy: RoutingPolicy, tickets: int, agents: int) -> Counter[str]:
    for i in range(agents):
        world.hire(f"Agent{i}", Role.AGENT, QUEUE, capacity=tickets)
    world.sla.set_routing_policy(ADMIN, QUEUE, policy, "even spread")
    clock = world.clock()
    opened = []
    for _ in range(tickets):
        opened.append(world.open("P3", QUEUE))
        if len(opened) % 50 == 0:
            clock.catch_up()
    clock.catch_up()
    names = {agent_id: name for name, agent_id in world.agents.items()}
    assignees = [world.app.assignment(t).agent_id for t in opened]
    return Counter(names[a] if a is not None else "nobody" for a in assignees)


@pytest.mark.parametrize("policy", ["round_robin", "least_loaded"])
def test_1000_tickets_spread_within_one_of_even(tmp_path: Path, policy: RoutingPolicy) -> None:
    # In memory: a thousand SQLite commits per policy would only measure fsync.
    world = World(tmp_path, FakeTime(MONDAY), in_memory=True)
    world.desk.create_queue(ADMIN, QUEUE, None)
    counts = spread(world, policy, 1000, 3)
    assert sum(counts.values()) == 1000
    assert max(counts.values()) - min(counts.values()) <= 1, counts
    decided = [e for e in world.log("RoutingDecided") if isinstance(e, routing.RoutingDecided)]
    assert len(decided) == 1000 and {e.policy for e in decided} == {policy}
    loads = {a.name: a.load for a in world.desk.agents(ADMIN, list(world.agents.values()))}
    assert loads == dict(counts)


def test_routing_skips_agents_at_capacity_and_defers_when_nobody_can_take_it(
    world: World,
) -> None:
    ann = world.hire("Ann", Role.AGENT, QUEUE, capacity=1)
    bo = world.hire("Bo", Role.AGENT, QUEUE, capacity=5)
    world.sla.set_routing_policy(ADMIN, QUEUE, "round_robin", None)
    world.sla.set_availability(ADMIN, bo, "away", "training")
    clock = world.clock()
    first, second = world.open("P3", QUEUE), world.open("P3", QUEUE)
    clock.catch_up()
    assert world.app.assignment(first).agent_id == ann
    deferred = world.events(asg.assignment_id(second))[-1]
    assert isinstance(deferred, routing.RoutingDeferred)
    assert deferred.reason == "no eligible agent: Ann at capacity (1/1); Bo status away: training"
    assert world.app.assignment(second).agent_id is None
    # Bo comes back: the next tick routes the waiting ticket, caused by the deferral.
    bo_himself = world.agent("Bo")
    world.sla.set_availability(bo_himself, bo, "available", None)
    assert clock.run_once() == 1
    decided = world.events(asg.assignment_id(second))[-2]
    assert isinstance(decided, routing.RoutingDecided) and decided.agent_id == bo
    assert decided.causation_id == deferred.event_id
    assert world.app.assignment(second).agent_id == bo
    assert clock.run_once() == 0


def test_a_deferred_ticket_is_routed_when_an_agents_shift_begins(world: World) -> None:
    eve = world.hire("Eve", Role.AGENT, QUEUE, capacity=5)
    evenings: dict[int, Shifts] = dict.fromkeys(range(7), ((time(17), time(23)),))
    schedule = av.AgentSchedule(
        hours=BusinessCalendar(name="evenings", timezone="UTC", working_hours=evenings)
    )
    world.sla.set_schedule(ADMIN, eve, schedule, "evening shift")
    world.sla.set_routing_policy(ADMIN, QUEUE, "least_loaded", None)
    ticket = world.open("P3", QUEUE)
    clock = world.clock()
    clock.run_once()
    deferred = world.events(asg.assignment_id(ticket))[-1]
    assert isinstance(deferred, routing.RoutingDeferred) and "Eve off shift" in deferred.reason
    world.time.at = datetime(2026, 3, 2, 17, 30, tzinfo=UTC)
    clock.run_once()  # routes the ticket (and records its first response at risk)
    assert world.app.assignment(ticket).agent_id == eve
    available = world.sla.availability(ADMIN, eve)
    assert available[2:] == (True, "on shift (evenings, UTC)")


def test_manual_queues_and_hand_assignments_are_left_alone(world: World) -> None:
    ann = world.hire("Ann", Role.AGENT, QUEUE, capacity=5)
    clock = world.clock()
    manual = world.open("P3", QUEUE)
    clock.run_once()
    assert world.app.assignment(manual).agent_id is None
    world.sla.set_routing_policy(ADMIN, QUEUE, "round_robin", None)
    by_hand = world.open("P3", None)
    world.desk.assign(ADMIN, by_hand, QUEUE, ann, None, None)  # queue and agent at once
    clock.run_once()
    assert [e.type_name for e in world.events(asg.assignment_id(by_hand))] == [
        "AssignedToQueue",
        "AssignedToAgent",
    ]
    assert world.app.assignment(manual).agent_id is None  # queued before the policy changed


def test_routing_uses_the_time_source_only_when_deciding(world: World) -> None:
    world.hire("Ann", Role.AGENT, QUEUE, capacity=5)
    world.sla.set_routing_policy(ADMIN, QUEUE, "round_robin", None)
    ticket = world.open("P3", QUEUE)
    world.time.advance(minutes=3)
    world.clock().catch_up()
    decided = world.events(asg.assignment_id(ticket))[1]
    assert isinstance(decided, routing.RoutingDecided)
    assert decided.occurred_at == MONDAY + timedelta(minutes=3)  # when it was decided
    assert decided.actor == "system:sla-clock"
