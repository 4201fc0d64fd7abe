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
from engine.domain import routing
from engine.domain.assignment import RoutingPolicy
from engine.domain.commands.directory import CreateQueue
from engine.domain.commands.service_levels import SetAvailability, SetRoutingPolicy, SetSchedule
from engine.domain.commands.tickets import Assign
from engine.domain.directory import Role, agent_principal

QUEUE = "desk"


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path, FakeTime(MONDAY))
    w.desk.send(ADMIN, CreateQueue(name=QUEUE))
    return w


def spread(world: World, policy: RoutingPolicy, tickets: int, agents: int) -> Counter[str]:
    for i in range(agents):
        world.hire(f"Agent{i}", Role.AGENT, QUEUE, capacity=tickets)
    world.desk.send(ADMIN, SetRoutingPolicy(queue=QUEUE, policy=policy, reason="even spread"))
    clock = world.clock()
    opened = []
    for _ in range(tickets):
        opened.append(world.open("P3", QUEUE))
        if len(opened) % 50 == 0:
            clock.catch_up()
    clock.catch_up()
    names = {agent_id: name for name, agent_id in world.agents.items()}
    assignees = [world.app.aggregates.assignment(t).agent_id for t in opened]
    return Counter(names[a] if a is not None else "nobody" for a in assignees)


@pytest.mark.parametrize("policy", ["round_robin", "least_loaded"])
def test_1000_tickets_spread_within_one_of_even(tmp_path: Path, policy: RoutingPolicy) -> None:
    # In memory: a thousand SQLite commits per policy would only measure fsync.
    world = World(tmp_path, FakeTime(MONDAY), in_memory=True)
    world.desk.send(ADMIN, CreateQueue(name=QUEUE))
    counts = spread(world, policy, 1000, 3)
    assert sum(counts.values()) == 1000
    assert max(counts.values()) - min(counts.values()) <= 1, counts
    decided = [e for e in world.log("RoutingDecided") if isinstance(e, routing.RoutingDecided)]
    assert len(decided) == 1000 and {e.policy for e in decided} == {policy}
    loads = {a.name: a.load for a in world.desk.queries.agents(ADMIN)}
    assert loads == dict(counts)


def test_routing_skips_agents_at_capacity_and_defers_when_nobody_can_take_it(
    world: World,
) -> None:
    ann = world.hire("Ann", Role.AGENT, QUEUE, capacity=1)
    bo = world.hire("Bo", Role.AGENT, QUEUE, capacity=5)
    world.desk.send(ADMIN, SetRoutingPolicy(queue=QUEUE, policy="round_robin"))
    world.desk.send(ADMIN, SetAvailability(agent_id=bo, status="away", reason="training"))
    clock = world.clock()
    first, second = world.open("P3", QUEUE), world.open("P3", QUEUE)
    clock.catch_up()
    assert world.app.aggregates.assignment(first).agent_id == ann
    deferred = world.events(asg.assignment_id(second))[-1]
    assert isinstance(deferred, routing.RoutingDeferred)
    # Agents by principal id, without the status's reason (personal data, sealed).
    assert deferred.reason == (
        f"no eligible agent: {agent_principal(ann)} at capacity (1/1); "
        f"{agent_principal(bo)} status away"
    )
    assert world.app.aggregates.assignment(second).agent_id is None
    # Bo comes back: the next tick routes the waiting ticket, caused by the deferral.
    bo_himself = world.agent("Bo")
    world.desk.send(bo_himself, SetAvailability(agent_id=bo, status="available"))
    assert clock.run_once() == 1
    decided = world.events(asg.assignment_id(second))[-2]
    assert isinstance(decided, routing.RoutingDecided) and decided.agent_id == bo
    assert decided.causation_id == deferred.event_id
    assert world.app.aggregates.assignment(second).agent_id == bo
    assert clock.run_once() == 0


def test_a_deferred_ticket_is_routed_when_an_agents_shift_begins(world: World) -> None:
    eve = world.hire("Eve", Role.AGENT, QUEUE, capacity=5)
    evenings = dict.fromkeys(range(7), [(time(17), time(23))])
    schedule = SetSchedule(
        agent_id=eve, timezone="UTC", working_hours=evenings, reason="evening shift"
    )
    world.desk.send(ADMIN, schedule)
    world.desk.send(ADMIN, SetRoutingPolicy(queue=QUEUE, policy="least_loaded"))
    ticket = world.open("P3", QUEUE)
    clock = world.clock()
    clock.run_once()
    deferred = world.events(asg.assignment_id(ticket))[-1]
    assert (
        isinstance(deferred, routing.RoutingDeferred)
        and f"{agent_principal(eve)} off shift" in deferred.reason
    )
    world.time.at = datetime(2026, 3, 2, 17, 30, tzinfo=UTC)
    clock.run_once()  # routes the ticket (and records its first response at risk)
    assert world.app.aggregates.assignment(ticket).agent_id == eve
    available = world.desk.queries.availability(ADMIN, eve)
    assert available[2:] == (True, f"on shift (agent:{eve}, UTC)")


def test_manual_queues_and_hand_assignments_are_left_alone(world: World) -> None:
    ann = world.hire("Ann", Role.AGENT, QUEUE, capacity=5)
    clock = world.clock()
    manual = world.open("P3", QUEUE)
    clock.run_once()
    assert world.app.aggregates.assignment(manual).agent_id is None
    world.desk.send(ADMIN, SetRoutingPolicy(queue=QUEUE, policy="round_robin"))
    by_hand = world.open("P3", None)
    world.desk.send(
        ADMIN, Assign(ticket_id=by_hand, queue=QUEUE, agent_id=ann)
    )  # queue and agent at once
    clock.run_once()
    assert [e.type_name for e in world.events(asg.assignment_id(by_hand))] == [
        "AssignedToQueue",
        "AssignedToAgent",
    ]
    assert (
        world.app.aggregates.assignment(manual).agent_id is None
    )  # queued before the policy changed


def test_routing_uses_the_time_source_only_when_deciding(world: World) -> None:
    world.hire("Ann", Role.AGENT, QUEUE, capacity=5)
    world.desk.send(ADMIN, SetRoutingPolicy(queue=QUEUE, policy="round_robin"))
    ticket = world.open("P3", QUEUE)
    world.time.advance(minutes=3)
    world.clock().catch_up()
    decided = world.events(asg.assignment_id(ticket))[1]
    assert isinstance(decided, routing.RoutingDecided)
    assert decided.occurred_at == MONDAY + timedelta(minutes=3)  # when it was decided
    assert decided.actor == "system:sla-clock"
