"""Routing: a ticket queued to a queue that routes ``round_robin`` or ``least_loaded``
goes to an agent (``RoutingDecided`` + ``AssignedToAgent`` + ``AgentTookTicket``), or
``RoutingDeferred`` is recorded and the routing is retried on later ticks, when agents
change or time passes. Every decision records the policy, the candidates with their load
and capacity, and the tie-break.

Agents and routing cursors are loaded once and then folded from the log as it is read: a
stale state is caught by the next append's optimistic concurrency (every change of an
agent is on its stream), which reloads it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from uuid import UUID, uuid5

from engine.app.config import SlaConfig
from engine.app.errors import ConflictError
from engine.app.repository import Repository
from engine.app.runner import Handler
from engine.domain import assignment as asg
from engine.domain import availability as av
from engine.domain import directory as dirs
from engine.domain import routing
from engine.domain.base import CommandMeta, DomainEvent
from engine.domain.commands.processes import RouteTicket, RoutingState, route_ticket
from engine.processes.follower import MAX_ATTEMPTS, LogFollower, RetryLaterError

ACTOR = "system:sla-clock"
NAMESPACE = UUID("0c2d7a51-4b8e-4f5e-9a77-3f1e2b6d9c40")
RETRY_DEFERRED_EVERY = timedelta(minutes=1)

ROUTED_TOPICS = frozenset({"AssignedToAgent", "Reassigned"})
# The Agent stream (kept folded), and what may make a deferred ticket routable again.
AGENT_TOPICS = frozenset(
    {
        "AgentRegistered",
        "AgentUpdated",
        "AgentTookTicket",
        "AgentDroppedTicket",
        "AgentAvailabilitySet",
        "AgentScheduleSet",
    }
)
ROUTABLE_AGAIN = (AGENT_TOPICS - {"AgentTookTicket"}) | {"RoutingPolicySet"}
INDEX_TOPICS = ROUTED_TOPICS | {"AssignedToQueue", "RoutingDeferred"}


class Router:
    """Routes queued tickets; a reactor of the clock process's log follower."""

    topics = INDEX_TOPICS | AGENT_TOPICS | ROUTABLE_AGAIN | {"RoutingTurnTaken"}
    index_topics = INDEX_TOPICS

    def __init__(self, follower: LogFollower, config: SlaConfig) -> None:
        self.follower = follower
        self.runner = follower.runner
        self.config = config
        self.deferred: dict[UUID, UUID] = {}  # ticket id -> the RoutingDeferred's event id
        self._agents: dict[UUID, tuple[dirs.Agent, av.Availability]] | None = None
        self._cursors: dict[str, routing.RoutingCursor] = {}
        self._agents_changed = False
        self._last_retry: datetime | None = None
        self.runner.register(RouteTicket, Handler(None, self._load, route_ticket))

    # --- indexes ------------------------------------------------------------------------------

    def index(self, event: DomainEvent) -> None:
        match event:
            case routing.RoutingDeferred():
                self.deferred[event.ticket_id] = event.event_id
            case asg.AssignedToQueue() | asg.AssignedToAgent() | asg.Reassigned():
                self.deferred.pop(event.ticket_id, None)
            case routing.RoutingTurnTaken():
                cursor = self._cursors.get(event.queue)
                if cursor is None or event.originator_version <= cursor.version:
                    pass  # Not cached, or seen already (our own append).
                elif event.originator_version == cursor.version + 1:
                    self._cursors[event.queue] = routing.evolve_cursor(cursor, event)
                else:
                    self._cursors[event.queue] = self.config.routing_cursor(event.queue)
        if event.type_name in AGENT_TOPICS:
            self._index_agent(event)
        if event.type_name in ROUTABLE_AGAIN:
            self._agents_changed = True

    def _index_agent(self, event: DomainEvent) -> None:
        if self._agents is None:
            return  # Not loaded yet: the first routing loads every agent.
        agent_id = event.originator_id
        current = self._agents.get(agent_id)
        if current is None or event.originator_version != current[0].version + 1:
            if current is None or event.originator_version > current[0].version:
                self._agents[agent_id] = self.config.agent(agent_id)  # new, or a gap
            return
        agent, availability = current
        self._agents[agent_id] = (
            dirs.evolve_agent(agent, event),
            av.evolve(availability, event) or availability,
        )

    def agent_states(self) -> dict[UUID, tuple[dirs.Agent, av.Availability]]:
        if self._agents is None:
            self._agents = {agent.id: (agent, a) for agent, a in self.config.agents()}
        return self._agents

    def queue_lead(self, queue: str) -> str | None:
        """The queue's first active lead (registration order), from the agents known."""
        return self.config.queue_lead(queue, [agent for agent, _ in self.agent_states().values()])

    def _cursor(self, queue: str) -> routing.RoutingCursor:
        if queue not in self._cursors:
            self._cursors[queue] = self.config.routing_cursor(queue)
        return self._cursors[queue]

    # --- routing ------------------------------------------------------------------------------

    def react(self, event: DomainEvent) -> None:
        if not isinstance(event, asg.AssignedToQueue):
            return
        if self.config.routing_policy(event.queue).policy == "manual":
            return  # Routed by hand (indexing this event dropped any deferral of the ticket).
        assignment = self.config.repository.assignment(event.ticket_id)
        if assignment.version != event.originator_version or assignment.agent_id is not None:
            return  # Superseded: assigned by hand, moved on, or already routed.
        self.route(event.ticket_id, event.event_id, record_deferral=True)

    def _load(self, repo: Repository, c: RouteTicket) -> RoutingState:
        a = repo.assignment(c.ticket_id)
        if a.queue is None or a.agent_id is not None:
            return RoutingState(a, False, None, None, {})
        policy = self.config.routing_policy(a.queue)
        if policy.policy == "manual" or not repo.ticket(c.ticket_id, deciding=True).is_active:
            return RoutingState(a, False, policy, None, {})
        return RoutingState(a, True, policy, self._cursor(a.queue), self.agent_states())

    def route(self, ticket_id: UUID, causation_id: UUID, record_deferral: bool) -> int:
        """Route the ticket (or record that nobody can take it); 1 if it appended."""
        if self.follower.waits_for(ticket_id):
            self.follower.flush()  # decide on what the ticket's reaction recorded
        for _ in range(MAX_ATTEMPTS):
            command = RouteTicket(
                ticket_id=ticket_id, at=self.follower.now(), record_deferral=record_deferral
            )
            decided = self.runner.decide(command, partial(_meta, command, causation_id))
            state: RoutingState = decided.state
            if not state.routable:
                self.deferred.pop(ticket_id, None)
                return 0
            if not decided.events:
                return 0
            try:
                self.follower.append_now(decided)
            except ConflictError:
                # Reload what the decision read from the caches before deciding again.
                assert state.assignment.queue is not None
                self._cursors.pop(state.assignment.queue, None)
                for event in decided.events:
                    if isinstance(event, routing.RoutingDecided) and self._agents is not None:
                        self._agents[event.agent_id] = self.config.agent(event.agent_id)
                continue
            return 1
        raise RetryLaterError(f"routing ticket {ticket_id} keeps conflicting")

    def tick(self, now: datetime) -> int:
        """Retry deferred routings when agents changed, or a minute passed."""
        if not self.deferred:
            return 0
        stale = self._last_retry is None or now - self._last_retry >= RETRY_DEFERRED_EVERY
        if not (self._agents_changed or stale):
            return 0
        self._agents_changed, self._last_retry = False, now
        work: Callable[[UUID, UUID], int] = lambda t, c: self.route(t, c, False)  # noqa: E731
        return sum(
            self.follower.isolated(ticket_id, partial(work, ticket_id, causation))
            for ticket_id, causation in list(self.deferred.items())
        )


def _meta(command: RouteTicket, causation_id: UUID, state: RoutingState) -> CommandMeta:
    """Routing decisions are named by the assignment version they route from."""
    a = state.assignment
    return CommandMeta(
        actor=ACTOR,
        occurred_at=command.at,
        correlation_id=uuid5(NAMESPACE, f"route:{a.id}:{a.version}"),
        causation_id=causation_id,
    )
