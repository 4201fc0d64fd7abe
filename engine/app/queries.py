"""What people read straight from the event store (the views answer the rest): a
ticket now, at a version or as it stood at a past moment; an escalation; a ticket's SLA;
an agent's availability; the directory; the service-level configuration; a ticket's
chain verification. Each read is permitted first (engine.app.permissions)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from engine.app.audit import ticket_streams, verify_streams
from engine.app.config import SlaConfig
from engine.app.permissions import Principal, authorize, shown_to
from engine.app.repository import Repository
from engine.app.results import EscalationDetails, TicketDetails, ticket_etag
from engine.domain import assignment as asg
from engine.domain import availability as av
from engine.domain import directory as dirs
from engine.domain import sla
from engine.domain import ticket as tk
from engine.domain.base import NotFoundError
from engine.stores.envelope import decode_envelope


class Queries:
    """Reads for the API and the CLI; ``clock`` gives "now" for SLA figures."""

    def __init__(self, repository: Repository, clock: Callable[[], datetime]) -> None:
        self.repository = repository
        self.clock = clock
        self.config = SlaConfig(repository)

    def ticket(
        self,
        principal: Principal,
        ticket_id: UUID,
        version: int | None = None,
        as_of: datetime | None = None,
    ) -> TicketDetails:
        """The ticket now, at a ticket version, or as it stood at a past moment.

        Permission is decided on the ticket as it is now, before anything about its past
        is read: a ticket the caller may not read answers the same at every time."""
        repo = self.repository
        t = repo.ticket(ticket_id)
        authorize(principal, "read_ticket", requester_id=t.requester_id)
        if as_of is not None:
            events = [e for e in repo.events(ticket_id) if e.occurred_at <= as_of]
            version = events[-1].originator_version if events else 0
            if version == 0:
                raise NotFoundError(f"ticket {ticket_id} did not exist at {as_of.isoformat()}")
        if version is not None:
            t = repo.ticket(ticket_id, version)
        if version is not None and t.version != version:
            raise NotFoundError(f"ticket {ticket_id} has no version {version} (latest {t.version})")
        cutoff = as_of if as_of is not None else (t.updated_at if version else None)
        a = repo.fold(asg.assignment_id(ticket_id), asg.KIND, ticket_id, until=cutoff)
        assert a is not None  # folded from an initial state
        sla_clock = sla.fold(
            e
            for e in repo.events(sla.clock_id(ticket_id))
            if cutoff is None or e.occurred_at <= cutoff
        )
        sla_view = sla.view(sla_clock, cutoff or self.clock()) if sla_clock else None
        details = TicketDetails(
            sla=sla_view,
            **t.model_dump(
                exclude={"lifecycle", "links", "open_escalations", "comment_count", "id"}
            ),
            id=t.id,
            etag=ticket_etag(t.version, a.version),
            status=tk.public_status(t, a.agent_id),
            queue=a.queue,
            assignee_id=a.agent_id,
            assignment_accepted=a.accepted,
            assignment_version=a.version,
            open_escalations=[e for e, _ in t.open_escalations],
            links=[{"relation": r.value, "ticket_id": str(o)} for r, o in t.links],
            allowed_actions=sorted(tk.allowed_actions(t, a.agent_id, a.accepted)),
        )
        return shown_to(principal, details)

    def escalation(self, principal: Principal, escalation_id: UUID) -> EscalationDetails:
        e = self.repository.escalation(escalation_id)
        t = self.repository.ticket(e.ticket_id)
        authorize(principal, "read_ticket", requester_id=t.requester_id)
        return shown_to(principal, EscalationDetails(**e.model_dump(mode="python")))

    def ticket_sla(self, principal: Principal, ticket_id: UUID) -> sla.SlaView:
        """The ticket's SLA targets, due times, elapsed and remaining business time, now."""
        ticket = self.repository.ticket(ticket_id)
        authorize(principal, "read_ticket", requester_id=ticket.requester_id)
        clock = self.config.clock(ticket_id)
        if clock is None:
            raise NotFoundError(
                f"the SLA clock of ticket {ticket_id} has not started yet "
                "(the clock process starts it when it sees the ticket's triage)"
            )
        return sla.view(clock, self.clock())

    def verify_ticket(self, principal: Principal, ticket_id: UUID) -> dict[str, Any]:
        """Recompute the hash chains of the ticket's Ticket, Assignment and Escalation
        streams and report the first broken link."""
        t = self.repository.ticket(ticket_id)
        authorize(principal, "read_audit")
        app = self.repository.app
        streams: dict[str, list[dict[str, Any]]] = {}
        for aggregate in ticket_streams(app, t.id):
            stored = app.recorder.select_events(aggregate)
            streams[str(aggregate)] = [decode_envelope(s.state) for s in stored]
        report = verify_streams({k: v for k, v in streams.items() if v})
        return {"ticket_id": str(t.id), **report.as_dict()}

    def agents(self, principal: Principal) -> list[dirs.Agent]:
        """Every registered agent, in registration order."""
        authorize(principal, "read_directory")
        repo = self.repository
        return [repo.agent(agent_id) for agent_id in repo.agent_ids()]

    def availability(
        self, principal: Principal, agent_id: UUID
    ) -> tuple[dirs.Agent, av.Availability, bool, str]:
        """The agent's availability now: state, whether they take tickets, and why."""
        if principal.agent_id != agent_id:
            authorize(principal, "read_sla_config")
        agent, availability = self.config.agent(agent_id)
        available, why = av.available_at(availability, self.clock())
        return agent, availability, available and agent.active, why

    def queue_config(self, principal: Principal, queue: str) -> SlaConfig:
        """The configuration, for a queue that exists (a queue's routing or rules)."""
        authorize(principal, "read_sla_config")
        self.repository.queue(queue)
        return self.config

    def sla_config(self, principal: Principal) -> SlaConfig:
        """The service-level configuration, for those who may read it."""
        authorize(principal, "read_sla_config")
        return self.config
