"""Routing decisions: round robin and least loaded spread evenly, only eligible agents are
considered (membership, capacity, status, schedule, on-call), and decisions explain
themselves."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from uuid import UUID, uuid5

import pytest

from engine.domain import assignment as asg
from engine.domain import availability as av
from engine.domain import directory as dirs
from engine.domain import routing
from engine.domain.assignment import RoutingPolicy
from engine.domain.base import CommandMeta, DomainEvent, EventFactory, RuleViolationError
from engine.domain.calendar import BusinessCalendar, Shifts

NS = UUID("00000000-0000-4000-8000-0000000000aa")
QUEUE = "service-desk"
MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def meta(n: int = 0, at: datetime = MONDAY) -> CommandMeta:
    return CommandMeta(actor="system:sla-clock", occurred_at=at, correlation_id=uuid5(NS, str(n)))


def agent(name: str, capacity: int = 2000, queues: Sequence[str] = (QUEUE,)) -> dirs.Agent:
    agent_id = uuid5(NS, name)
    events = dirs.register_agent(
        meta(), agent_id, name, None, dirs.Role.AGENT, list(queues), capacity
    )
    return dirs.evolve_agent(None, events[0])


def named(name: str) -> str:
    """How routing decisions name an agent: by principal id (names are personal data)."""
    return dirs.agent_principal(uuid5(NS, name))


def policy(name: RoutingPolicy) -> routing.QueueRouting:
    current = routing.QueueRouting(queue=QUEUE)
    if name == "manual":
        return current
    return routing.evolve_policy(current, routing.set_policy(current, meta(), name, "test")[0])


class Desk:
    """A queue simulated on the pure deciders: routes tickets, folds what they record."""

    def __init__(self, agents: list[dirs.Agent], how: RoutingPolicy) -> None:
        self.agents = {a.id: a for a in agents}
        self.order = [a.id for a in agents]
        self.availability: dict[UUID, av.Availability] = {}
        self.policy = policy(how)
        self.cursor = routing.RoutingCursor(queue=QUEUE)
        self.routed: Counter[str] = Counter()
        self.count = 0

    def route(self, at: datetime = MONDAY) -> tuple[routing.RoutingDecision, list[DomainEvent]]:
        self.count += 1
        ticket_id = uuid5(NS, f"ticket-{self.count}")
        assignment = asg.empty(ticket_id)
        assignment = asg.evolve(assignment, asg.assign_queue(assignment, meta(), QUEUE, None)[0])
        members = routing.candidates(
            QUEUE, [self.agents[i] for i in self.order], self.availability, at
        )
        decision = routing.decide(self.policy, self.cursor, members)
        events = routing.route(decision, assignment, self.agents, self.cursor, meta(self.count))
        for event in events:
            if event.originator_id in self.agents:
                self.agents[event.originator_id] = dirs.evolve_agent(
                    self.agents[event.originator_id], event
                )
            elif isinstance(event, routing.RoutingTurnTaken):
                self.cursor = routing.evolve_cursor(self.cursor, event)
        if decision.agent_id is not None:
            self.routed[self.agents[decision.agent_id].name] += 1
        return decision, events

    def drop(self, name: str, count: int) -> None:
        a = next(a for a in self.agents.values() if a.name == name)
        for ticket_id in sorted(a.tickets)[:count]:
            a = dirs.evolve_agent(a, dirs.drop_ticket(a, dirs_factory(), ticket_id, "resolved")[0])
        self.agents[a.id] = a

    def set_status(self, name: str, status: av.AvailabilityStatus) -> None:
        a = next(a for a in self.agents.values() if a.name == name)
        current = self.availability.get(a.id) or av.Availability(agent_id=a.id)
        event = av.set_status(current, a, meta(), status, "test")[0]
        self.availability[a.id] = av.evolve(current, event) or current
        self.agents[a.id] = dirs.evolve_agent(a, event)


def dirs_factory() -> EventFactory:
    return EventFactory(meta())


def test_round_robin_spreads_1000_tickets_within_one_of_even() -> None:
    desk = Desk([agent(n) for n in ("Ann", "Bo", "Cy")], "round_robin")
    for _ in range(1000):
        desk.route()
    assert sum(desk.routed.values()) == 1000
    assert max(desk.routed.values()) - min(desk.routed.values()) <= 1
    assert desk.routed == Counter({"Ann": 334, "Bo": 333, "Cy": 333})


def test_least_loaded_spreads_1000_tickets_within_one_of_even() -> None:
    desk = Desk([agent(n) for n in ("Ann", "Bo", "Cy", "Di")], "least_loaded")
    for _ in range(1000):
        desk.route()
        loads = [a.load for a in desk.agents.values()]
        assert max(loads) - min(loads) <= 1
    assert desk.routed == Counter({"Ann": 250, "Bo": 250, "Cy": 250, "Di": 250})


def test_least_loaded_is_relative_to_capacity_and_refills_who_resolved() -> None:
    desk = Desk([agent("Ann", capacity=10), agent("Bo", capacity=5)], "least_loaded")
    for _ in range(12):
        desk.route()
    assert desk.routed == Counter({"Ann": 8, "Bo": 4})  # two to one, like their capacities
    desk.drop("Bo", 3)  # Bo resolved three: Bo is now at 1/5, Ann at 8/10
    decisions = [desk.route()[0] for _ in range(3)]
    assert [desk.agents[d.agent_id].name for d in decisions if d.agent_id] == ["Bo"] * 3


def test_round_robin_skips_agents_at_capacity_and_away() -> None:
    desk = Desk([agent("Ann", capacity=1), agent("Bo"), agent("Cy")], "round_robin")
    desk.set_status("Cy", "away")
    names = [
        desk.agents[d.agent_id].name for d, _ in (desk.route() for _ in range(4)) if d.agent_id
    ]
    assert names == ["Ann", "Bo", "Bo", "Bo"]
    decision, _ = desk.route()
    skipped = {c.name: c.skipped for c in decision.candidates}
    # The status's reason is the agent's personal data: not in the recorded decision.
    assert skipped == {
        named("Ann"): "at capacity (1/1)",
        named("Bo"): None,
        named("Cy"): "status away",
    }


def test_nobody_eligible_defers_with_the_reason() -> None:
    desk = Desk([agent("Ann", capacity=1), agent("Bo")], "least_loaded")
    desk.route()
    desk.set_status("Bo", "offline")
    decision, events = desk.route()
    assert decision.agent_id is None
    assert [type(e) for e in events] == [routing.RoutingDeferred]
    deferred = events[0]
    assert isinstance(deferred, routing.RoutingDeferred)
    assert deferred.reason == (
        f"no eligible agent: {named('Ann')} at capacity (1/1); {named('Bo')} status offline"
    )
    assert [(c.name, c.load, c.capacity) for c in deferred.candidates] == [
        (named("Ann"), 1, 1),
        (named("Bo"), 0, 2000),
    ]
    empty = routing.decide(policy("round_robin"), routing.RoutingCursor(queue=QUEUE), [])
    assert empty.agent_id is None and "has no agents" in empty.explanation


def test_a_routed_assignment_explains_itself() -> None:
    desk = Desk([agent("Ann"), agent("Bo"), agent("Cy", queues=["other"])], "least_loaded")
    desk.route()
    decision, events = desk.route()
    assert [type(e).__name__ for e in events] == [
        "RoutingDecided",
        "AssignedToAgent",
        "AgentTookTicket",
        "RoutingTurnTaken",
    ]
    decided, assigned = events[0], events[1]
    assert isinstance(decided, routing.RoutingDecided)
    assert isinstance(assigned, asg.AssignedToAgent)
    assert (decided.originator_version, assigned.originator_version) == (2, 3)
    assert decided.policy == "least_loaded" and decided.policy_version == 1
    assert decided.agent_id == assigned.agent_id and assigned.policy == "least_loaded"
    assert [(c.name, c.load, c.capacity) for c in decided.candidates] == [
        (named("Ann"), 1, 2000),
        (named("Bo"), 0, 2000),
    ]  # Cy is not a member of the queue
    assert decided.explanation == f"least loaded: {named('Bo')} at 0/2000 (0% of capacity)"
    assert decided.tie_break == "none (a single least-loaded agent)"
    _, events = desk.route()
    tied = events[0]
    assert isinstance(tied, routing.RoutingDecided)
    assert tied.tie_break == f"2 tied: rotation in registration order after {named('Bo')}"


def test_manual_queues_are_not_routed() -> None:
    desk = Desk([agent("Ann")], "manual")
    decision, events = desk.route()
    assert decision.agent_id is None and events == []
    with pytest.raises(RuleViolationError, match="already routes manual"):
        routing.set_policy(routing.QueueRouting(queue=QUEUE), meta(), "manual", None)


# --- availability -----------------------------------------------------------------------------


def schedule() -> av.AgentSchedule:
    # Evenings and weekends: 17:00-23:00 every day in New York, and one on-call night.
    evenings: dict[int, Shifts] = dict.fromkeys(range(7), ((time(17), time(23)),))
    return av.AgentSchedule(
        hours=BusinessCalendar(
            name="evenings", timezone="America/New_York", working_hours=evenings
        ),
        on_call=(
            av.OnCallWindow(
                start=datetime(2026, 3, 7, 4, 0, tzinfo=UTC),
                end=datetime(2026, 3, 7, 12, 0, tzinfo=UTC),
                note="Saturday night on call",
            ),
        ),
    )


def test_availability_follows_status_schedule_and_on_call() -> None:
    ann = agent("Ann")
    state = av.evolve(
        None, dirs.register_agent(meta(), ann.id, "Ann", None, dirs.Role.AGENT, [], 1)[0]
    )
    assert state is not None and av.available_at(state, MONDAY) == (True, "available (no schedule)")
    event = av.set_schedule(state, ann, meta(), schedule(), "evening shift")[0]
    state = av.evolve(state, event)
    assert state is not None
    assert av.available_at(state, MONDAY) == (False, "off shift")  # 05:00 in New York
    saturday_evening = datetime(2026, 3, 7, 22, 30, tzinfo=UTC)  # 17:30 in New York
    assert av.available_at(state, saturday_evening)[0]
    on_call = datetime(2026, 3, 7, 6, 0, tzinfo=UTC)  # 01:00 in New York, on call
    assert av.available_at(state, on_call) == (True, "on call until 2026-03-07T12:00:00+00:00")
    away = av.evolve(state, av.set_status(state, ann, meta(), "away", "lunch")[0])
    assert away is not None and av.available_at(away, on_call) == (False, "status away")
    with pytest.raises(RuleViolationError, match="already away"):
        av.set_status(away, ann, meta(), "away", "lunch")


def test_availability_events_keep_the_agent_stream_consistent() -> None:
    ann = agent("Ann")
    state = av.Availability(agent_id=ann.id, version=1)
    event = av.set_status(state, ann, meta(), "away", None)[0]
    assert event.originator_id == ann.id and event.originator_version == ann.version + 1
    folded = dirs.evolve_agent(ann, event)
    assert folded.version == 2 and folded.active  # the directory fold only bumps the version
    with pytest.raises(ValueError, match="ends after it starts"):
        av.OnCallWindow(start=MONDAY, end=MONDAY - timedelta(hours=1))
