"""The desk's service-level configuration as it stands now, or as it stood at an instant
(the events up to then): how the clock process picks the versions a ticket runs under."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from engine.app.repository import Repository
from engine.domain import availability as av
from engine.domain import directory as dirs
from engine.domain import routing, sla
from engine.domain.base import NotFoundError
from engine.domain.directory import Role
from engine.domain.priority import Priority


class SlaConfig:
    """Configuration reads, now or as it stood at ``at`` (events with occurred_at <= at)."""

    def __init__(self, repository: Repository) -> None:
        self.repository = repository

    def policy(self, at: datetime | None = None, version: int | None = None) -> sla.SlaPolicy:
        if version == 0:
            return sla.DEFAULT_POLICY
        found = self.repository.fold(sla.POLICY_ID, sla.POLICY_KIND, version=version, until=at)
        assert found is not None  # folded from the default
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
        found = self.repository.fold(
            sla.calendar_id(name), sla.CALENDAR_KIND, name, version=version, until=at
        )
        if found is None or (version is not None and found.version != version):
            suffix = f" version {version}" if version is not None else ""
            raise NotFoundError(f"calendar {name!r}{suffix} not found")
        return found

    def find_calendar(self, name: str) -> sla.CalendarVersion | None:
        try:
            return self.calendar(name)
        except NotFoundError:
            return None

    def calendar_names(self) -> list[str]:
        names = set(sla.BUILTIN_CALENDARS)
        app = self.repository.app
        start = 1
        while True:
            batch = app.recorder.select_notifications(start, 1000, topics=["SlaCalendarSet"])
            for notification in batch:
                event = app.mapper.to_domain_event(notification)
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
        found = self.repository.fold(
            sla.escalation_rules_id(queue), sla.RULES_KIND, queue, until=at
        )
        assert found is not None  # folded from the default
        return found

    def routing_policy(self, queue: str, at: datetime | None = None) -> routing.QueueRouting:
        found = self.repository.fold(
            routing.routing_policy_id(queue), routing.POLICY_KIND, queue, until=at
        )
        assert found is not None  # folded from the default
        return found

    def routing_cursor(self, queue: str) -> routing.RoutingCursor:
        found = self.repository.fold(routing.routing_cursor_id(queue), routing.CURSOR_KIND, queue)
        assert found is not None  # folded from the default
        return found

    def agent(self, agent_id: UUID) -> tuple[dirs.Agent, av.Availability]:
        """The agent and their availability, folded from one read of the stream."""
        return self.repository.agent_with_availability(agent_id)

    def agents(self) -> list[tuple[dirs.Agent, av.Availability]]:
        """Every agent in registration order, with availability."""
        return [self.agent(agent_id) for agent_id in self.repository.agent_ids()]

    def queue_lead(self, queue: str, agents: list[dirs.Agent] | None = None) -> str | None:
        """The first active lead of the queue (registration order), as a principal id."""
        members = agents if agents is not None else [a for a, _ in self.agents()]
        for agent in members:
            if agent.role == Role.LEAD and agent.active and queue in agent.queues:
                return dirs.agent_principal(agent.id)
        return None

    def clock(self, ticket_id: UUID) -> sla.SlaClock | None:
        return self.repository.fold(sla.clock_id(ticket_id), sla.CLOCK_KIND)
