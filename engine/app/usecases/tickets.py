"""Ticket queries and commands (Ticket and Assignment aggregates, agent load)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from engine.app.application import (
    Idempotency,
    etag,
)
from engine.app.permissions import Principal, authorize
from engine.app.results import CommandResult, EscalationDetails, TicketDetails
from engine.app.usecases.base import UseCases
from engine.domain import assignment as asg
from engine.domain import directory as dirs
from engine.domain import escalation as esc
from engine.domain import sla
from engine.domain import ticket as tk
from engine.domain.base import (
    CommandMeta,
    DomainEvent,
    EventFactory,
    NotFoundError,
    RuleViolationError,
)
from engine.domain.directory import Role
from engine.domain.priority import Level, Priority


class TicketUseCases(UseCases):
    def details(
        self,
        principal: Principal,
        ticket_id: UUID,
        version: int | None = None,
        as_of: datetime | None = None,
    ) -> TicketDetails:
        """The ticket now, at a ticket version, or as it stood at a past moment."""
        if as_of is not None:
            events = [e for e in self.app._events(ticket_id) if e.occurred_at <= as_of]
            version = events[-1].originator_version if events else 0
            if version == 0:
                raise NotFoundError(f"ticket {ticket_id} did not exist at {as_of.isoformat()}")
        t = self.app.ticket(ticket_id, version)
        authorize(principal, "read_ticket", requester_id=t.requester_id)
        if version is not None and t.version != version:
            raise NotFoundError(f"ticket {ticket_id} has no version {version} (latest {t.version})")
        cutoff = as_of if as_of is not None else (t.updated_at if version else None)
        a = asg.empty(ticket_id)
        for event in self.app._events(asg.assignment_id(ticket_id)):
            if cutoff is not None and event.occurred_at > cutoff:
                break
            a = asg.evolve(a, event)
        status = tk.public_status(t, a.agent_id)
        sla_events = self.app._events(sla.clock_id(ticket_id))
        if cutoff is not None:
            sla_events = [e for e in sla_events if e.occurred_at <= cutoff]
        sla_clock = sla.fold(sla_events)
        sla_view = sla.view(sla_clock, cutoff or self.clock()) if sla_clock else None
        return TicketDetails(
            sla=sla_view,
            **t.model_dump(
                exclude={"lifecycle", "links", "open_escalations", "comment_count", "id"}
            ),
            id=t.id,
            etag=etag(t.version, a.version),
            status=status,
            queue=a.queue,
            assignee_id=a.agent_id,
            assignment_accepted=a.accepted,
            assignment_version=a.version,
            open_escalations=[e for e, _ in t.open_escalations],
            links=[{"relation": r.value, "ticket_id": str(o)} for r, o in t.links],
            allowed_actions=sorted(tk.allowed_actions(t, a.agent_id, a.accepted)),
        )

    def escalation_details(self, principal: Principal, escalation_id: UUID) -> EscalationDetails:
        e = self.app.escalation(escalation_id)
        t = self.app.ticket(e.ticket_id)
        authorize(principal, "read_ticket", requester_id=t.requester_id)
        return EscalationDetails(**e.model_dump(mode="python"))

    def open_ticket(
        self,
        principal: Principal,
        cmd: tk.OpenTicket,
        queue: str | None,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        authorize(principal, "open")
        if principal.role == Role.REQUESTER and cmd.requester_id != principal.id:
            cmd = cmd.model_copy(update={"requester_id": principal.id})
        meta = self._meta(principal)

        def decision() -> tuple[list[DomainEvent], Callable[[int], CommandResult]]:
            events = tk.open_ticket(cmd, meta, self.app.matrix)
            av = 0
            if queue is not None:
                self.app.queue(queue)
                events += asg.assign_queue(asg.empty(cmd.ticket_id), meta, queue, "opened")
                av = 1

            def result(position: int) -> CommandResult:
                return CommandResult(
                    aggregate_id=cmd.ticket_id,
                    version=2,
                    position=position,
                    etag=etag(2, av),
                    status_code=201,
                )

            return events, result

        return self.app.run(principal, meta, idem, decision)

    def triage(
        self,
        principal: Principal,
        ticket_id: UUID,
        impact: Level,
        urgency: Level,
        priority: Priority | None,
        override_reason: str | None,
        if_match: str | None = None,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        if priority is not None and priority != self.app.matrix.priority(impact, urgency):
            authorize(principal, "override_priority")

        def decide(t: tk.Ticket, a: asg.Assignment, meta: CommandMeta) -> list[DomainEvent]:
            return tk.triage(
                t, a.agent_id, meta, self.app.matrix, impact, urgency, priority, override_reason
            )

        return self._on_ticket(principal, ticket_id, "triage", decide, if_match, idem)

    def comment(
        self,
        principal: Principal,
        ticket_id: UUID,
        comment_id: UUID,
        body: str,
        internal: bool,
        if_match: str | None = None,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        if internal:
            authorize(principal, "comment_internal")
        visibility: tk.Visibility = "internal" if internal else "public"

        def decide(t: tk.Ticket, a: asg.Assignment, meta: CommandMeta) -> list[DomainEvent]:
            return tk.comment(
                t, a.agent_id, meta, comment_id, body, visibility, principal.role.value
            )

        return self._on_ticket(principal, ticket_id, "comment", decide, if_match, idem)

    def assign(
        self,
        principal: Principal,
        ticket_id: UUID,
        queue: str | None,
        agent_id: UUID | None,
        reason: str | None,
        override_reason: str | None,
        if_match: str | None = None,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        """Route the ticket to a queue, to an agent of its queue, or both."""
        if queue is None and agent_id is None:
            raise RuleViolationError("name a queue, an agent_id, or both")
        if agent_id is not None and agent_id != principal.agent_id:
            authorize(principal, "assign_others")
        if override_reason:
            authorize(principal, "override_capacity")

        def decide(t: tk.Ticket, a: asg.Assignment, meta: CommandMeta) -> list[DomainEvent]:
            tk.require(t, a.agent_id, "assign")
            if a.agent_id is not None and a.agent_id != principal.agent_id:
                # Taking a ticket away from a colleague is a lead's decision.
                authorize(principal, "assign_others")
            events: list[DomainEvent] = []
            target_queue = queue or a.queue
            if queue is not None:
                self.app.queue(queue)
                events += asg.assign_queue(a, meta, queue, reason)
            if agent_id is None:
                if a.agent_id is not None and events:
                    old = self.app.agent(a.agent_id)
                    if target_queue not in old.queues:
                        raise RuleViolationError(
                            f"the assigned agent {old.name} is not in queue {target_queue!r}: "
                            "release the ticket or name a new agent"
                        )
                if not events:
                    raise RuleViolationError(f"the ticket is already in queue {queue!r}")
                return events
            if target_queue is None:
                raise RuleViolationError("assign the ticket to a queue before an agent")
            agent = self.app.agent(agent_id)
            make = EventFactory(meta)
            events += asg.assign_agent(
                a,
                meta,
                agent,
                target_queue,
                reason,
                override_reason,
                version_offset=len(events),
            )
            if a.agent_id is not None:
                events += dirs.drop_ticket(self.app.agent(a.agent_id), make, t.id, "reassigned")
            if t.is_active:
                events += dirs.take_ticket(agent, make, t.id)
            return events

        return self._on_ticket(principal, ticket_id, "assign", decide, if_match, idem)

    def accept(
        self,
        principal: Principal,
        ticket_id: UUID,
        if_match: str | None = None,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        def decide(t: tk.Ticket, a: asg.Assignment, meta: CommandMeta) -> list[DomainEvent]:
            tk.require(t, a.agent_id, "accept", accepted=a.accepted)
            assert a.agent_id is not None
            accepting = principal.agent_id if principal.role == Role.AGENT else a.agent_id
            return asg.accept(a, meta, accepting or a.agent_id)

        return self._on_ticket(principal, ticket_id, "accept", decide, if_match, idem)

    def release(
        self,
        principal: Principal,
        ticket_id: UUID,
        reason: str | None,
        if_match: str | None = None,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        def decide(t: tk.Ticket, a: asg.Assignment, meta: CommandMeta) -> list[DomainEvent]:
            tk.require(t, a.agent_id, "release")
            events = asg.release(a, meta, reason)
            assert a.agent_id is not None
            events += dirs.drop_ticket(
                self.app.agent(a.agent_id), EventFactory(meta), t.id, "released"
            )
            return events

        return self._on_ticket(principal, ticket_id, "release", decide, if_match, idem)

    def start(
        self,
        principal: Principal,
        ticket_id: UUID,
        if_match: str | None = None,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        def decide(t: tk.Ticket, a: asg.Assignment, meta: CommandMeta) -> list[DomainEvent]:
            return tk.start(t, a.agent_id, meta)

        return self._on_ticket(principal, ticket_id, "start", decide, if_match, idem)

    def pend(
        self,
        principal: Principal,
        ticket_id: UUID,
        reason: str,
        waiting_on: tk.WaitingOn,
        if_match: str | None = None,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        def decide(t: tk.Ticket, a: asg.Assignment, meta: CommandMeta) -> list[DomainEvent]:
            return tk.pend(t, a.agent_id, meta, reason, waiting_on)

        return self._on_ticket(principal, ticket_id, "pend", decide, if_match, idem)

    def resume(
        self,
        principal: Principal,
        ticket_id: UUID,
        note: str | None,
        if_match: str | None = None,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        def decide(t: tk.Ticket, a: asg.Assignment, meta: CommandMeta) -> list[DomainEvent]:
            return tk.resume(t, a.agent_id, meta, note)

        return self._on_ticket(principal, ticket_id, "resume", decide, if_match, idem)

    def resolve(
        self,
        principal: Principal,
        ticket_id: UUID,
        resolution_code: str,
        note: str,
        if_match: str | None = None,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        def decide(t: tk.Ticket, a: asg.Assignment, meta: CommandMeta) -> list[DomainEvent]:
            events = tk.resolve(t, a.agent_id, meta, resolution_code, note)
            return events + self._drop_from_agent(a, meta, t.id, "resolved")

        return self._on_ticket(principal, ticket_id, "resolve", decide, if_match, idem)

    def reopen(
        self,
        principal: Principal,
        ticket_id: UUID,
        reason: str,
        if_match: str | None = None,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        def decide(t: tk.Ticket, a: asg.Assignment, meta: CommandMeta) -> list[DomainEvent]:
            events = tk.reopen(t, a.agent_id, meta, reason, self.app.reopen_window)
            if a.agent_id is not None:
                # The ticket returns to its agent's load; capacity is not a reason to
                # refuse a customer's reopening.
                agent = self.app.agent(a.agent_id)
                events += dirs.take_ticket(agent, EventFactory(meta), t.id)
            return events

        return self._on_ticket(principal, ticket_id, "reopen", decide, if_match, idem)

    def _withdraw_escalations(
        self, t: tk.Ticket, ending: list[DomainEvent], meta: CommandMeta, why: str
    ) -> list[DomainEvent]:
        """Withdraw the escalations still open on a ticket that ``ending`` closes, cancels
        or merges, in the same append: no team, vendor or manager is left working on it."""
        state = t
        for event in ending:
            if event.originator_id == t.id:
                state = tk.evolve(state, event)
        events: list[DomainEvent] = []
        for escalation_id, _level in t.open_escalations:
            events += esc.withdraw(self.app.escalation(escalation_id), meta, why)
            closed = tk.escalation_closed(state, meta, escalation_id)
            state = tk.evolve(state, closed[0])
            events += closed
        return events

    def close(
        self,
        principal: Principal,
        ticket_id: UUID,
        reason: str | None,
        if_match: str | None = None,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        def decide(t: tk.Ticket, a: asg.Assignment, meta: CommandMeta) -> list[DomainEvent]:
            events = tk.close(t, a.agent_id, meta, reason)
            return events + self._withdraw_escalations(t, events, meta, "ticket closed")

        return self._on_ticket(principal, ticket_id, "close", decide, if_match, idem)

    def cancel(
        self,
        principal: Principal,
        ticket_id: UUID,
        reason: str,
        if_match: str | None = None,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        def decide(t: tk.Ticket, a: asg.Assignment, meta: CommandMeta) -> list[DomainEvent]:
            events = tk.cancel(t, a.agent_id, meta, reason)
            events += self._withdraw_escalations(t, events, meta, "ticket cancelled")
            return events + self._drop_from_agent(a, meta, t.id, "cancelled")

        return self._on_ticket(principal, ticket_id, "cancel", decide, if_match, idem)

    def link(
        self,
        principal: Principal,
        ticket_id: UUID,
        other_id: UUID,
        relation: tk.Relation,
        if_match: str | None = None,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        def decide(t: tk.Ticket, a: asg.Assignment, meta: CommandMeta) -> list[DomainEvent]:
            return tk.link(t, self.app.ticket(other_id, deciding=True), a.agent_id, meta, relation)

        return self._on_ticket(principal, ticket_id, "link", decide, if_match, idem)

    def merge(
        self,
        principal: Principal,
        ticket_id: UUID,
        into_id: UUID,
        reason: str | None,
        if_match: str | None = None,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        def decide(t: tk.Ticket, a: asg.Assignment, meta: CommandMeta) -> list[DomainEvent]:
            events = tk.merge(t, self.app.ticket(into_id, deciding=True), a.agent_id, meta, reason)
            events += self._withdraw_escalations(t, events, meta, f"ticket merged into {into_id}")
            return events + self._drop_from_agent(a, meta, t.id, "merged")

        return self._on_ticket(principal, ticket_id, "merge", decide, if_match, idem)

    def rate(
        self,
        principal: Principal,
        ticket_id: UUID,
        score: int,
        comment_text: str | None,
        if_match: str | None = None,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        def decide(t: tk.Ticket, a: asg.Assignment, meta: CommandMeta) -> list[DomainEvent]:
            return tk.rate(t, a.agent_id, meta, score, comment_text)

        return self._on_ticket(principal, ticket_id, "rate", decide, if_match, idem)
