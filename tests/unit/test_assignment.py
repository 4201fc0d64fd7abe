"""The Assignment decider: queue and agent routing, capacity, acceptance, release."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid5

from givens import given, like

from engine.domain import assignment as asg
from engine.domain import directory as dirs
from engine.domain.base import (
    CommandMeta,
    DomainEvent,
    EventFactory,
    InvalidTransitionError,
    RuleViolationError,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TICKET = UUID("00000000-0000-4000-8000-000000000001")
AID = asg.assignment_id(TICKET)
NS = UUID("00000000-0000-4000-8000-0000000000aa")


def meta(minutes: int = 0) -> CommandMeta:
    return CommandMeta(
        actor="agent:lee",
        occurred_at=T0 + timedelta(minutes=minutes),
        correlation_id=uuid5(NS, str(minutes)),
    )


def agent(
    name: str, queues: Sequence[str] = ("service-desk",), capacity: int = 2, load: int = 0
) -> dirs.Agent:
    """An agent folded from its own events: registered, then ``load`` tickets taken."""
    agent_id = uuid5(NS, name)
    state = dirs.evolve_agent(
        None,
        dirs.register_agent(meta(), agent_id, name, None, dirs.Role.AGENT, list(queues), capacity)[
            0
        ],
    )
    for n in range(load):
        (took,) = dirs.take_ticket(state, EventFactory(meta(n)), uuid5(agent_id, str(n)))
        state = dirs.evolve_agent(state, took)
    assert state.load == load
    return state


ANN, BO = agent("Ann"), agent("Bo", queues=("service-desk", "network"))


def assignment(history: Sequence[DomainEvent]) -> asg.Assignment:
    state = asg.empty(TICKET)
    for event in history:
        state = asg.evolve(state, event)
    return state


Decide = Callable[[Sequence[DomainEvent]], list[DomainEvent]]


def to_queue(queue: str, reason: str | None = None) -> Decide:
    return lambda h: asg.assign_queue(assignment(h), meta(len(h)), queue, reason)


def to_agent(
    who: dirs.Agent,
    queue: str = "service-desk",
    reason: str | None = None,
    override: str | None = None,
    version_offset: int = 0,
) -> Decide:
    return lambda h: asg.assign_agent(
        assignment(h), meta(len(h)), who, queue, reason, override, version_offset=version_offset
    )


def accept(agent_id: UUID) -> Decide:
    return lambda h: asg.accept(assignment(h), meta(len(h)), agent_id)


def release(reason: str | None = None) -> Decide:
    return lambda h: asg.release(assignment(h), meta(len(h)), reason)


QUEUED = to_queue("service-desk")([])
WITH_ANN = QUEUED + to_agent(ANN)(QUEUED)


# --- queues --------------------------------------------------------------------------


def test_the_first_queue_is_recorded_with_its_reason() -> None:
    given().when(to_queue("service-desk", "triaged")).then(
        like(
            asg.AssignedToQueue,
            originator_id=AID,
            originator_version=1,
            ticket_id=TICKET,
            queue="service-desk",
            previous_queue=None,
            reason="triaged",
        )
    )


def test_moving_queues_records_the_previous_one() -> None:
    events = (
        given(QUEUED)
        .when(to_queue("network"))
        .then(
            like(
                asg.AssignedToQueue,
                originator_version=2,
                queue="network",
                previous_queue="service-desk",
            )
        )
    )
    assert assignment(QUEUED + events).queue == "network"


def test_the_same_queue_again_changes_nothing() -> None:
    given(QUEUED).when(to_queue("service-desk")).then()


# --- agents: membership and capacity -------------------------------------------------------


def test_an_agent_of_the_queue_is_assigned_with_their_load() -> None:
    events = (
        given(QUEUED)
        .when(to_agent(agent("Ann", load=1)))
        .then(
            like(
                asg.AssignedToAgent,
                originator_version=2,
                agent_id=ANN.id,
                queue="service-desk",
                policy="manual",
                agent_load=1,
                agent_capacity=2,
                capacity_override_reason=None,
            )
        )
    )
    a = assignment(QUEUED + events)
    assert (a.agent_id, a.queue, a.accepted, a.version) == (ANN.id, "service-desk", False, 2)


def test_the_agent_must_belong_to_the_queue() -> None:
    given(QUEUED).when(to_agent(ANN, queue="network")).then_raises(
        RuleViolationError, match="Ann is not a member of queue 'network' .member of: service-desk"
    )


def test_a_deactivated_agent_cannot_be_assigned() -> None:
    (update,) = dirs.update_agent(ANN, meta(), None, None, False, "left")
    gone = dirs.evolve_agent(ANN, update)
    given(QUEUED).when(to_agent(gone)).then_raises(RuleViolationError, match="deactivated")


def test_capacity_is_enforced() -> None:
    given(QUEUED).when(to_agent(agent("Ann", load=2))).then_raises(
        RuleViolationError, match=r"at capacity \(2 of 2 active tickets\)"
    )


def test_a_lead_overrides_capacity_with_a_reason() -> None:
    given(QUEUED).when(to_agent(agent("Ann", load=2), override="only Ann has access")).then(
        like(asg.AssignedToAgent, agent_load=2, capacity_override_reason="only Ann has access")
    )


def test_an_override_below_capacity_is_not_recorded() -> None:
    given(QUEUED).when(to_agent(ANN, override="just in case")).then(
        like(asg.AssignedToAgent, capacity_override_reason=None)
    )


def test_a_version_offset_makes_room_for_the_queue_event_in_the_same_command() -> None:
    given().when(to_agent(ANN, version_offset=1)).then(
        like(asg.AssignedToAgent, originator_version=2)
    )


# --- reassignment -------------------------------------------------------------------


def test_reassigning_needs_a_reason() -> None:
    given(WITH_ANN).when(to_agent(BO)).then_raises(RuleViolationError, match="needs a reason")
    given(WITH_ANN).when(to_agent(BO, reason="")).then_raises(RuleViolationError)


def test_reassigning_with_a_reason_records_both_agents_and_resets_acceptance() -> None:
    history = WITH_ANN + accept(ANN.id)(WITH_ANN)
    events = (
        given(history)
        .when(to_agent(BO, reason="Bo knows VPNs"))
        .then(
            like(
                asg.Reassigned,
                originator_version=4,
                from_agent_id=ANN.id,
                agent_id=BO.id,
                queue="service-desk",
                reason="Bo knows VPNs",
                agent_load=0,
                agent_capacity=2,
            )
        )
    )
    a = assignment(history + events)
    assert (a.agent_id, a.accepted) == (BO.id, False)


def test_reassigning_checks_the_new_agents_capacity() -> None:
    full = agent("Bo", queues=("service-desk",), load=2)
    given(WITH_ANN).when(to_agent(full, reason="Bo knows VPNs")).then_raises(
        RuleViolationError, match="capacity"
    )
    given(WITH_ANN).when(to_agent(full, reason="Bo knows VPNs", override="urgent")).then(
        like(asg.Reassigned, capacity_override_reason="urgent")
    )


def test_assigning_the_current_agent_again_is_refused() -> None:
    given(WITH_ANN).when(to_agent(ANN, reason="again")).then_raises(
        RuleViolationError, match="already assigned to Ann"
    )


# --- acceptance and release -----------------------------------------------------------


def test_only_the_assigned_agent_accepts() -> None:
    given(WITH_ANN).when(accept(BO.id)).then_raises(RuleViolationError, match="only the assigned")
    events = (
        given(WITH_ANN)
        .when(accept(ANN.id))
        .then(like(asg.AssignmentAccepted, originator_version=3, ticket_id=TICKET, agent_id=ANN.id))
    )
    assert assignment(WITH_ANN + events).accepted


def test_accepting_needs_an_agent_and_happens_once() -> None:
    error = given(QUEUED).when(accept(ANN.id)).then_raises(InvalidTransitionError)
    assert (error.state, error.allowed) == ("unassigned", ["assign"])
    history = WITH_ANN + accept(ANN.id)(WITH_ANN)
    error = given(history).when(accept(ANN.id)).then_raises(InvalidTransitionError)
    assert (error.state, error.allowed) == ("accepted", ["assign", "release"])


def test_releasing_unassigns_the_agent_but_keeps_the_queue() -> None:
    history = WITH_ANN + accept(ANN.id)(WITH_ANN)
    events = (
        given(history)
        .when(release("wrong team"))
        .then(
            like(asg.AssignmentReleased, originator_version=4, agent_id=ANN.id, reason="wrong team")
        )
    )
    a = assignment(history + events)
    assert (a.agent_id, a.accepted, a.queue) == (None, False, "service-desk")


def test_releasing_needs_an_agent() -> None:
    error = given(QUEUED).when(release()).then_raises(InvalidTransitionError)
    assert (error.aggregate, error.state, error.action) == ("assignment", "unassigned", "release")


def test_each_ticket_has_its_own_assignment() -> None:
    other = uuid5(NS, "another ticket")
    assert asg.assignment_id(TICKET) == AID != asg.assignment_id(other)
    assert asg.empty(TICKET) == asg.Assignment(id=AID, ticket_id=TICKET)
