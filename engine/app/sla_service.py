"""Service-level use cases: SLA policy, calendars, queue routing and escalation rules, agent
availability (all audited configuration), and a ticket's SLA as of now.

``SlaConfig`` reads configuration as it stood at an instant (the events up to then), which
is how the clock process picks the version a ticket runs under; ``SlaService`` records
changes through ``TicketingApp.run`` (one atomic append, exactly once per Idempotency-Key).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from engine.app.application import Idempotency, TicketingApp, new_meta
from engine.app.permissions import Principal, authorize
from engine.app.results import CommandResult
from engine.domain import availability as av
from engine.domain import directory as dirs
from engine.domain import routing, sla
from engine.domain.assignment import RoutingPolicy
from engine.domain.base import DomainEvent, NotFoundError
from engine.domain.calendar import BusinessCalendar
from engine.domain.directory import Role
from engine.domain.priority import Priority

S = TypeVar("S")


def require(principal: Principal, action: str) -> None:
    """The role table lives in engine.app.permissions (and the README)."""
    authorize(principal, action)


class SlaConfig:
    """Configuration reads, now or as it stood at ``at`` (events with occurred_at <= at)."""

    def __init__(self, app: TicketingApp) -> None:
        self.app = app

    def _fold_until(
        self,
        aggregate_id: UUID,
        evolve: Callable[[Any, DomainEvent], S],
        initial: S,
        at: datetime | None,
        version: int | None = None,
    ) -> S:
        state = initial
        for event in self.app._events(aggregate_id, version):
            if at is not None and event.occurred_at > at:
                break
            state = evolve(state, event)
        return state

    def policy(self, at: datetime | None = None, version: int | None = None) -> sla.SlaPolicy:
        if version == 0:
            return sla.DEFAULT_POLICY
        found = self._fold_until(sla.POLICY_ID, sla.evolve_policy, sla.DEFAULT_POLICY, at, version)
        if version is not None and found.version != version:
            raise NotFoundError(f"SLA policy version {version} not found")
        return found

    def calendar(
        self, name: str, at: datetime | None = None, version: int | None = None
    ) -> sla.CalendarVersion:
        builtin = sla.builtin_calendar(name)
        if version == 0:
            if builtin is None:
                raise NotFoundError(f"calendar {name!r} has no built-in version 0")
            return builtin
        found = self._fold_until(sla.calendar_id(name), sla.evolve_calendar, builtin, at, version)
        if found is None or (version is not None and found.version != version):
            suffix = f" version {version}" if version is not None else ""
            raise NotFoundError(f"calendar {name!r}{suffix} not found")
        return found

    def calendar_names(self) -> list[str]:
        names = set(sla.BUILTIN_CALENDARS)
        start = 1
        while True:
            batch = self.app.recorder.select_notifications(start, 1000, topics=["SlaCalendarSet"])
            for notification in batch:
                event = self.app.mapper.to_domain_event(notification)
                if isinstance(event, sla.SlaCalendarSet):
                    names.add(event.calendar.name)
            if len(batch) < 1000:
                return sorted(names)
            start = batch[-1].id + 1

    def terms(self, priority: Priority, at: datetime) -> sla.ClockTerms:
        """The terms a ticket of ``priority`` triaged at ``at`` runs under."""
        policy = self.policy(at)
        calendar = self.calendar(policy.targets[priority].calendar, at)
        return sla.terms_for(policy, calendar, priority)

    def escalation_rules(self, queue: str, at: datetime | None = None) -> sla.EscalationRules:
        return self._fold_until(
            sla.escalation_rules_id(queue),
            sla.evolve_escalation_rules,
            sla.EscalationRules(queue=queue),
            at,
        )

    def routing_policy(self, queue: str, at: datetime | None = None) -> routing.QueueRouting:
        return self._fold_until(
            routing.routing_policy_id(queue),
            routing.evolve_policy,
            routing.QueueRouting(queue=queue),
            at,
        )

    def routing_cursor(self, queue: str) -> routing.RoutingCursor:
        return self._fold_until(
            routing.routing_cursor_id(queue),
            routing.evolve_cursor,
            routing.RoutingCursor(queue=queue),
            None,
        )

    def agent(self, agent_id: UUID) -> tuple[dirs.Agent, av.Availability]:
        """The agent and their availability, folded from one read of the stream."""
        agent: dirs.Agent | None = None
        availability: av.Availability | None = None
        for event in self.app._events(agent_id):
            agent = dirs.evolve_agent(agent, event)
            availability = av.evolve(availability, event)
        if agent is None or availability is None:
            raise NotFoundError(f"agent {agent_id} not found")
        return agent, availability

    def agents(self) -> list[tuple[dirs.Agent, av.Availability]]:
        """Every agent in registration order, with availability."""
        return [self.agent(agent_id) for agent_id in self.app.agent_ids()]

    def queue_lead(self, queue: str, agents: list[dirs.Agent] | None = None) -> str | None:
        """The first active lead of the queue (registration order), as a principal id."""
        members = agents if agents is not None else [a for a, _ in self.agents()]
        for agent in members:
            if agent.role == Role.LEAD and agent.active and queue in agent.queues:
                return f"agent:{agent.id}"
        return None

    def clock(self, ticket_id: UUID) -> sla.SlaClock | None:
        return sla.fold(self.app._events(sla.clock_id(ticket_id)))


class SlaService:
    """Admin commands for service levels and the ticket SLA query."""

    def __init__(self, app: TicketingApp, clock: Callable[[], datetime]) -> None:
        self.app = app
        self.clock = clock
        self.config = SlaConfig(app)

    def _record(
        self,
        principal: Principal,
        idem: Idempotency | None,
        decide: Callable[[Any], tuple[list[DomainEvent], UUID]],
        status_code: int = 200,
    ) -> CommandResult:
        meta = new_meta(principal, self.clock())

        def decision() -> tuple[list[DomainEvent], Callable[[int], CommandResult]]:
            events, aggregate_id = decide(meta)
            version = max(
                (e.originator_version for e in events if e.originator_id == aggregate_id),
                default=0,
            )

            def result(position: int) -> CommandResult:
                return CommandResult(
                    aggregate_id=aggregate_id,
                    version=version,
                    position=position,
                    etag=f'"{version}"',
                    status_code=status_code,
                )

            return events, result

        return self.app.run(principal, meta, idem, decision)

    # --- configuration commands ----------------------------------------------------

    def set_policy(
        self,
        principal: Principal,
        targets: dict[Priority, sla.PriorityTargets],
        at_risk_share: float,
        reason: str | None,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        """Record a new version of the SLA policy (running clocks keep their version)."""
        require(principal, "manage_sla")
        return self._record(
            principal,
            idem,
            lambda meta: (
                sla.set_policy(
                    self.config.policy(),
                    meta,
                    targets,
                    at_risk_share,
                    self.config.calendar_names(),
                    reason,
                ),
                sla.POLICY_ID,
            ),
        )

    def set_calendar(
        self,
        principal: Principal,
        calendar: BusinessCalendar,
        reason: str | None,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        """Define a calendar or record its next version."""
        require(principal, "manage_sla")

        def decide(meta: Any) -> tuple[list[DomainEvent], UUID]:
            try:
                current: sla.CalendarVersion | None = self.config.calendar(calendar.name)
            except NotFoundError:
                current = None
            return sla.set_calendar(current, meta, calendar, reason), sla.calendar_id(calendar.name)

        return self._record(principal, idem, decide)

    def set_routing_policy(
        self,
        principal: Principal,
        queue: str,
        policy: RoutingPolicy,
        reason: str | None,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        require(principal, "manage_sla")

        def decide(meta: Any) -> tuple[list[DomainEvent], UUID]:
            self.app.queue(queue)
            current = self.config.routing_policy(queue)
            return routing.set_policy(current, meta, policy, reason), routing.routing_policy_id(
                queue
            )

        return self._record(principal, idem, decide)

    def set_escalation_rules(
        self,
        principal: Principal,
        queue: str,
        lead: str | None,
        default: sla.EscalationRule,
        by_priority: dict[Priority, sla.EscalationRule],
        reason: str | None,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        require(principal, "manage_sla")

        def decide(meta: Any) -> tuple[list[DomainEvent], UUID]:
            self.app.queue(queue)
            for rule in [default, *by_priority.values()]:
                for step in (rule.on_at_risk, rule.on_breach):
                    if step is not None and step.target_type == "queue" and step.target:
                        self.app.queue(step.target)
            current = self.config.escalation_rules(queue)
            events = sla.set_escalation_rules(current, meta, lead, default, by_priority, reason)
            return events, sla.escalation_rules_id(queue)

        return self._record(principal, idem, decide)

    def _may_change_agent(self, principal: Principal, agent_id: UUID) -> None:
        if principal.agent_id != agent_id:
            require(principal, "set_others_availability")

    def set_availability(
        self,
        principal: Principal,
        agent_id: UUID,
        status: av.AvailabilityStatus,
        reason: str | None,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        """An agent sets their own status; leads and admins anyone's."""
        self._may_change_agent(principal, agent_id)

        def decide(meta: Any) -> tuple[list[DomainEvent], UUID]:
            agent, availability = self.config.agent(agent_id)
            return av.set_status(availability, agent, meta, status, reason), agent_id

        return self._record(principal, idem, decide)

    def set_schedule(
        self,
        principal: Principal,
        agent_id: UUID,
        schedule: av.AgentSchedule,
        reason: str | None,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        """An agent sets their own working hours and on-call windows; leads and admins anyone's."""
        self._may_change_agent(principal, agent_id)

        def decide(meta: Any) -> tuple[list[DomainEvent], UUID]:
            agent, availability = self.config.agent(agent_id)
            return av.set_schedule(availability, agent, meta, schedule, reason), agent_id

        return self._record(principal, idem, decide)

    # --- queries -------------------------------------------------------------------

    def read_config(self, principal: Principal) -> SlaConfig:
        require(principal, "read_sla_config")
        return self.config

    def availability(
        self, principal: Principal, agent_id: UUID
    ) -> tuple[dirs.Agent, av.Availability, bool, str]:
        """The agent's availability now: state, whether they take tickets, and why."""
        if principal.agent_id != agent_id:
            require(principal, "read_sla_config")
        agent, availability = self.config.agent(agent_id)
        available, why = av.available_at(availability, self.clock())
        return agent, availability, available and agent.active, why

    def ticket_sla(self, principal: Principal, ticket_id: UUID) -> sla.SlaView:
        """The ticket's SLA targets, due times, elapsed and remaining business time, now."""
        ticket = self.app.ticket(ticket_id)
        authorize(principal, "read_ticket", requester_id=ticket.requester_id)
        clock = self.config.clock(ticket_id)
        if clock is None:
            raise NotFoundError(
                f"the SLA clock of ticket {ticket_id} has not started yet "
                "(the clock process starts it when it sees the ticket's triage)"
            )
        return sla.view(clock, self.clock())
