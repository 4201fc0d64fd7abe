"""Automatic routing: which agent of a queue gets a ticket, decided purely and explained.

Each queue has a routing policy (its own aggregate, versioned): ``manual`` (a person
assigns), ``round_robin`` (agents take turns in their registration order) or
``least_loaded`` (fewest active tickets relative to capacity; ties take turns). Only
eligible agents are considered: active members of the queue, available at that instant
(status and schedule, see ``availability``) and below capacity.

A routing records, in one atomic append: ``RoutingDecided`` on the ticket's Assignment
(the policy and its version, every candidate with load, capacity and why it was or was not
eligible, and the tie-break), then ``AssignedToAgent``, the agent's ``AgentTookTicket`` and
``RoutingTurnTaken`` on the queue's routing cursor. When nobody is eligible it records
``RoutingDeferred`` with the reason, and the ticket stays in the queue unassigned. A replay
reads the decisions; it never decides again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from fractions import Fraction
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from engine.domain import assignment as asg
from engine.domain import directory as dirs
from engine.domain.assignment import AssignmentEvent, RoutingPolicy
from engine.domain.availability import Availability, available_at
from engine.domain.base import (
    CommandMeta,
    DomainEvent,
    EventFactory,
    Kind,
    RuleViolationError,
    derived_id,
)


def routing_policy_id(queue: str) -> UUID:
    return derived_id("routing-policy", queue)


def routing_cursor_id(queue: str) -> UUID:
    return derived_id("routing-cursor", queue)


# --- the queue's routing policy ----------------------------------------------------------


class RoutingPolicySet(DomainEvent):
    """A queue's routing policy changed."""

    type_name = "RoutingPolicySet"
    aggregate_type = "RoutingPolicy"
    queue: str
    policy: RoutingPolicy
    reason: str | None = None


class QueueRouting(BaseModel):
    """A queue's routing policy; version 0 is the default, ``manual``."""

    model_config = ConfigDict(frozen=True)

    queue: str
    version: int = 0
    policy: RoutingPolicy = "manual"


def evolve_policy(state: QueueRouting, event: DomainEvent) -> QueueRouting:
    s = state.model_copy(update={"version": event.originator_version})
    if isinstance(event, RoutingPolicySet):
        return s.model_copy(update={"policy": event.policy})
    return s


def set_policy(
    current: QueueRouting, meta: CommandMeta, policy: RoutingPolicy, reason: str | None
) -> list[DomainEvent]:
    if policy == current.policy:
        raise RuleViolationError(f"queue {current.queue!r} already routes {policy}")
    return [
        EventFactory(meta).make(
            RoutingPolicySet,
            routing_policy_id(current.queue),
            current.version + 1,
            queue=current.queue,
            policy=policy,
            reason=reason,
        )
    ]


# --- the queue's routing cursor (whose turn it is) ----------------------------------------


class RoutingTurnTaken(DomainEvent):
    """An agent of the queue took their turn: the next rotation starts after them."""

    type_name = "RoutingTurnTaken"
    aggregate_type = "RoutingCursor"
    queue: str
    ticket_id: UUID
    agent_id: UUID


class RoutingCursor(BaseModel):
    model_config = ConfigDict(frozen=True)

    queue: str
    version: int = 0
    last_agent_id: UUID | None = None
    turns: int = 0


def evolve_cursor(state: RoutingCursor, event: DomainEvent) -> RoutingCursor:
    s = state.model_copy(update={"version": event.originator_version})
    if isinstance(event, RoutingTurnTaken):
        return s.model_copy(update={"last_agent_id": event.agent_id, "turns": s.turns + 1})
    return s


# --- the decision ----------------------------------------------------------------------


class Candidate(BaseModel):
    """A member of the queue as the router saw them."""

    model_config = ConfigDict(frozen=True)

    agent_id: UUID
    name: str = Field(
        description="how explanations name the agent: their principal id (an agent's "
        "name is personal data, sealed in AgentRegistered; decisions before it: the name)"
    )
    load: int
    capacity: int
    available: bool
    availability: str
    eligible: bool
    skipped: str | None = None


class RoutingDecided(AssignmentEvent):
    """Why the ticket went to this agent: policy, candidates and tie-break."""

    type_name = "RoutingDecided"
    queue: str
    policy: RoutingPolicy
    policy_version: int
    candidates: list[Candidate]
    agent_id: UUID
    tie_break: str
    explanation: str


class RoutingDeferred(AssignmentEvent):
    """Nobody could take the ticket: it stays in the queue, unassigned, for this reason."""

    type_name = "RoutingDeferred"
    queue: str
    policy: RoutingPolicy
    policy_version: int
    candidates: list[Candidate]
    reason: str


class RoutingDecision(BaseModel):
    """The pure outcome: a chosen agent (or None), with its explanation."""

    model_config = ConfigDict(frozen=True)

    queue: str
    policy: RoutingPolicy
    policy_version: int
    candidates: tuple[Candidate, ...]
    agent_id: UUID | None
    tie_break: str
    explanation: str


def candidates(
    queue: str,
    agents: Sequence[dirs.Agent],
    availability: Mapping[UUID, Availability],
    at: datetime,
) -> list[Candidate]:
    """The queue's members, in the given (registration) order, each marked eligible or not."""
    found: list[Candidate] = []
    for agent in agents:
        if queue not in agent.queues:
            continue
        av = availability.get(agent.id) or Availability(agent_id=agent.id)
        available, why = available_at(av, at)
        skipped = None
        if not agent.active:
            skipped = "deactivated"
        elif not available:
            skipped = why
        elif agent.load >= agent.capacity:
            skipped = f"at capacity ({agent.load}/{agent.capacity})"
        found.append(
            Candidate(
                agent_id=agent.id,
                name=dirs.agent_principal(agent.id),
                load=agent.load,
                capacity=agent.capacity,
                available=available,
                availability=why,
                eligible=skipped is None,
                skipped=skipped,
            )
        )
    return found


def _rotation(pool: Sequence[Candidate], order: Sequence[UUID], last: UUID | None) -> Candidate:
    """The first of ``pool`` after ``last`` in the cyclic ``order``."""
    position = {agent_id: i for i, agent_id in enumerate(order)}
    start = position[last] + 1 if last in position else 0
    return min(pool, key=lambda c: (position[c.agent_id] - start) % len(order))


def decide(
    policy: QueueRouting, cursor: RoutingCursor, members: Sequence[Candidate]
) -> RoutingDecision:
    """Choose an agent for a ticket of the queue, or nobody, and say why."""
    order = [c.agent_id for c in members]
    pool = [c for c in members if c.eligible]
    names = {c.agent_id: c.name for c in members}
    last = names.get(cursor.last_agent_id) if cursor.last_agent_id else None
    after = f"after {last}" if last else "from the first member"

    def decision(agent_id: UUID | None, tie_break: str, explanation: str) -> RoutingDecision:
        return RoutingDecision(
            queue=policy.queue,
            policy=policy.policy,
            policy_version=policy.version,
            candidates=tuple(members),
            agent_id=agent_id,
            tie_break=tie_break,
            explanation=explanation,
        )

    if policy.policy == "manual":
        return decision(None, "none", f"queue {policy.queue!r} routes manually")
    if not pool:
        if not members:
            why = f"queue {policy.queue!r} has no agents"
        else:
            why = "no eligible agent: " + "; ".join(f"{c.name} {c.skipped}" for c in members)
        return decision(None, "none", why)
    if policy.policy == "round_robin":
        chosen = _rotation(pool, order, cursor.last_agent_id)
        return decision(
            chosen.agent_id,
            f"rotation in registration order {after}",
            f"round robin: {chosen.name}'s turn ({len(pool)} of {len(members)} eligible)",
        )
    lowest = min(Fraction(c.load, c.capacity) for c in pool)
    tied = [c for c in pool if Fraction(c.load, c.capacity) == lowest]
    chosen = _rotation(tied, order, cursor.last_agent_id)
    tie_break = (
        "none (a single least-loaded agent)"
        if len(tied) == 1
        else f"{len(tied)} tied: rotation in registration order {after}"
    )
    return decision(
        chosen.agent_id,
        tie_break,
        f"least loaded: {chosen.name} at {chosen.load}/{chosen.capacity} "
        f"({float(lowest):.0%} of capacity)",
    )


def route(
    decision: RoutingDecision,
    assignment: asg.Assignment,
    agents: Mapping[UUID, dirs.Agent],
    cursor: RoutingCursor,
    meta: CommandMeta,
) -> list[DomainEvent]:
    """The events that record ``decision`` for the ticket of ``assignment``."""
    if decision.policy == "manual":
        return []
    make = EventFactory(meta)
    version = assignment.version + 1
    explained = {
        "ticket_id": assignment.ticket_id,
        "queue": decision.queue,
        "policy": decision.policy,
        "policy_version": decision.policy_version,
        "candidates": list(decision.candidates),
    }
    if decision.agent_id is None:
        return [
            make.make(
                RoutingDeferred, assignment.id, version, reason=decision.explanation, **explained
            )
        ]
    agent = agents[decision.agent_id]
    events: list[DomainEvent] = [
        make.make(
            RoutingDecided,
            assignment.id,
            version,
            agent_id=agent.id,
            tie_break=decision.tie_break,
            explanation=decision.explanation,
            **explained,
        )
    ]
    events += asg.assign_agent(
        assignment, meta, agent, decision.queue, None, None, decision.policy, version_offset=1
    )
    events += dirs.take_ticket(agent, make, assignment.ticket_id)
    events.append(
        make.make(
            RoutingTurnTaken,
            routing_cursor_id(decision.queue),
            cursor.version + 1,
            queue=decision.queue,
            ticket_id=assignment.ticket_id,
            agent_id=agent.id,
        )
    )
    return events


POLICY_KIND = Kind("RoutingPolicy", evolve_policy, lambda queue: QueueRouting(queue=queue))
"""Keyed by the queue's name; a queue routes manually until a policy is set."""
CURSOR_KIND = Kind("RoutingCursor", evolve_cursor, lambda queue: RoutingCursor(queue=queue))
"""Keyed by the queue's name; the rotation starts from the first member."""
