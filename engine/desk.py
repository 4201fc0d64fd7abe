"""The service desk's use cases, one method per command.

Each method loads what it needs, asks the domain to decide, and commits the events
in one atomic append through ``TicketingApp.run`` (which also makes commands with an
Idempotency-Key exactly-once). Time comes from the injected clock, never the domain.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from engine.application import (
    Idempotency,
    PreconditionFailedError,
    TicketingApp,
    etag,
    new_api_key,
    new_meta,
)
from engine.auditing import ticket_streams, verify_streams
from engine.domain import assignment as asg
from engine.domain import directory as dirs
from engine.domain import escalation as esc
from engine.domain import privacy, sla
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
from engine.envelope import decode_envelope
from engine.policy import Principal, authorize, may
from engine.results import CommandResult, EscalationDetails, TicketDetails

Decision = Callable[[tk.Ticket, asg.Assignment, CommandMeta], list[DomainEvent]]


def _last_version(events: list[DomainEvent], aggregate_id: UUID, default: int) -> int:
    versions = [e.originator_version for e in events if e.originator_id == aggregate_id]
    return max(versions, default=default)


class Desk:
    """Commands and ticket queries for the API and the CLI."""

    def __init__(self, app: TicketingApp, clock: Callable[[], datetime]) -> None:
        self.app = app
        self.clock = clock

    def _meta(self, principal: Principal) -> CommandMeta:
        return new_meta(principal, self.clock())

    # --- ticket queries ----------------------------------------------------------

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

    # --- ticket commands ---------------------------------------------------------

    def _on_ticket(
        self,
        principal: Principal,
        ticket_id: UUID,
        action: str,
        decide: Decision,
        if_match: str | None,
        idem: Idempotency | None,
    ) -> CommandResult:
        meta = self._meta(principal)

        def decision() -> tuple[list[DomainEvent], Callable[[int], CommandResult]]:
            t = self.app.ticket(ticket_id)
            a = self.app.assignment(ticket_id)
            authorize(principal, action, requester_id=t.requester_id, assignee=a.agent_id)
            current = etag(t.version, a.version)
            if if_match is not None and if_match.strip() not in (current, "*"):
                raise PreconditionFailedError(
                    f"If-Match {if_match} does not match the ticket's ETag {current}"
                )
            events = decide(t, a, meta)
            tv = _last_version(events, t.id, t.version)
            av = _last_version(events, a.id, a.version)

            def result(position: int) -> CommandResult:
                return CommandResult(
                    aggregate_id=t.id, version=tv, position=position, etag=etag(tv, av)
                )

            return events, result

        return self.app.run(principal, meta, idem, decision)

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

    def _drop_from_agent(
        self, a: asg.Assignment, meta: CommandMeta, ticket_id: UUID, why: str
    ) -> list[DomainEvent]:
        if a.agent_id is None:
            return []
        return dirs.drop_ticket(self.app.agent(a.agent_id), EventFactory(meta), ticket_id, why)

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

    def close(
        self,
        principal: Principal,
        ticket_id: UUID,
        reason: str | None,
        if_match: str | None = None,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        def decide(t: tk.Ticket, a: asg.Assignment, meta: CommandMeta) -> list[DomainEvent]:
            return tk.close(t, a.agent_id, meta, reason)

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
            return tk.link(t, self.app.ticket(other_id), a.agent_id, meta, relation)

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
            events = tk.merge(t, self.app.ticket(into_id), a.agent_id, meta, reason)
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

    # --- escalations ---------------------------------------------------------------

    def escalate(
        self,
        principal: Principal,
        ticket_id: UUID,
        escalation_id: UUID,
        kind: esc.EscalationKind,
        target_type: esc.TargetType,
        target: str,
        reason: str,
        level: int | None,
        if_match: str | None = None,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        meta = self._meta(principal)

        def decision() -> tuple[list[DomainEvent], Callable[[int], CommandResult]]:
            t = self.app.ticket(ticket_id)
            a = self.app.assignment(ticket_id)
            authorize(principal, "escalate", requester_id=t.requester_id)
            current = etag(t.version, a.version)
            if if_match is not None and if_match.strip() not in (current, "*"):
                raise PreconditionFailedError(
                    f"If-Match {if_match} does not match the ticket's ETag {current}"
                )
            if target_type == "queue":
                self.app.queue(target)
            chosen, events = tk.escalated(t, a.agent_id, meta, escalation_id, level)
            events += esc.raise_escalation(
                meta, escalation_id, t.id, kind, target_type, target, reason, chosen, "manual"
            )

            def result(position: int) -> CommandResult:
                return CommandResult(
                    aggregate_id=escalation_id,
                    version=1,
                    position=position,
                    etag=f'"{1}"',
                    status_code=201,
                    extra={"ticket_id": str(t.id), "level": chosen},
                )

            return events, result

        return self.app.run(principal, meta, idem, decision)

    def _on_escalation(
        self,
        principal: Principal,
        escalation_id: UUID,
        decide: Callable[[esc.Escalation, CommandMeta], list[DomainEvent]],
        closes: bool,
        if_match: str | None,
        idem: Idempotency | None,
    ) -> CommandResult:
        meta = self._meta(principal)

        def decision() -> tuple[list[DomainEvent], Callable[[int], CommandResult]]:
            e = self.app.escalation(escalation_id)
            authorize(principal, "work_escalation")
            if if_match is not None and if_match.strip() not in (f'"{e.version}"', "*"):
                raise PreconditionFailedError(
                    f'If-Match {if_match} does not match the escalation\'s ETag "{e.version}"'
                )
            events = decide(e, meta)
            if closes:
                events += tk.escalation_closed(self.app.ticket(e.ticket_id), meta, e.id)
            version = _last_version(events, e.id, e.version)

            def result(position: int) -> CommandResult:
                return CommandResult(
                    aggregate_id=e.id, version=version, position=position, etag=f'"{version}"'
                )

            return events, result

        return self.app.run(principal, meta, idem, decision)

    def acknowledge_escalation(
        self,
        principal: Principal,
        escalation_id: UUID,
        note: str | None,
        if_match: str | None = None,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        return self._on_escalation(
            principal,
            escalation_id,
            lambda e, m: esc.acknowledge(e, m, note),
            False,
            if_match,
            idem,
        )

    def record_vendor_reference(
        self,
        principal: Principal,
        escalation_id: UUID,
        vendor: str,
        reference: str,
        if_match: str | None = None,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        return self._on_escalation(
            principal,
            escalation_id,
            lambda e, m: esc.record_vendor_reference(e, m, vendor, reference),
            False,
            if_match,
            idem,
        )

    def resolve_escalation(
        self,
        principal: Principal,
        escalation_id: UUID,
        note: str,
        if_match: str | None = None,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        return self._on_escalation(
            principal, escalation_id, lambda e, m: esc.resolve(e, m, note), True, if_match, idem
        )

    def withdraw_escalation(
        self,
        principal: Principal,
        escalation_id: UUID,
        reason: str,
        if_match: str | None = None,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        return self._on_escalation(
            principal,
            escalation_id,
            lambda e, m: esc.withdraw(e, m, reason),
            True,
            if_match,
            idem,
        )

    # --- directory -------------------------------------------------------------

    def create_queue(
        self,
        principal: Principal,
        name: str,
        description: str | None,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        authorize(principal, "manage_directory")
        meta = self._meta(principal)

        def decision() -> tuple[list[DomainEvent], Callable[[int], CommandResult]]:
            if self.app._fold(dirs.queue_id(name), dirs.evolve_queue) is not None:
                raise RuleViolationError(f"queue {name!r} already exists")
            events = dirs.create_queue(meta, name, description)
            qid = dirs.queue_id(name)

            def result(position: int) -> CommandResult:
                return CommandResult(
                    aggregate_id=qid,
                    version=1,
                    position=position,
                    etag='"1"',
                    status_code=201,
                    extra={"name": name},
                )

            return events, result

        return self.app.run(principal, meta, idem, decision)

    def register_agent(
        self,
        principal: Principal,
        agent_id: UUID,
        name: str,
        email: str | None,
        role: Role,
        queues: list[str],
        capacity: int,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        """Register an agent and issue their API key (returned once, stored hashed)."""
        authorize(principal, "manage_directory")
        meta = self._meta(principal)
        api_key = new_api_key()

        def decision() -> tuple[list[DomainEvent], Callable[[int], CommandResult]]:
            for queue in queues:
                self.app.queue(queue)
            make = EventFactory(meta)
            events = dirs.register_agent(meta, agent_id, name, email, role, queues, capacity)
            events += dirs.issue_credential(
                make, _hash(api_key), f"agent:{agent_id}", name, role, agent_id
            )

            def result(position: int) -> CommandResult:
                return CommandResult(
                    aggregate_id=agent_id,
                    version=1,
                    position=position,
                    etag='"1"',
                    status_code=201,
                    extra={"api_key": api_key, "principal_id": f"agent:{agent_id}"},
                )

            return events, result

        return self.app.run(principal, meta, idem, decision)

    def update_agent(
        self,
        principal: Principal,
        agent_id: UUID,
        queues: list[str] | None,
        capacity: int | None,
        active: bool | None,
        reason: str | None,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        authorize(principal, "manage_directory")
        if queues is None and capacity is None and active is None:
            raise RuleViolationError("name at least one of queues, capacity, active to change")
        meta = self._meta(principal)

        def decision() -> tuple[list[DomainEvent], Callable[[int], CommandResult]]:
            agent = self.app.agent(agent_id)
            for queue in queues or []:
                self.app.queue(queue)
            events = dirs.update_agent(agent, meta, queues, capacity, active, reason)

            def result(position: int) -> CommandResult:
                v = agent.version + 1
                return CommandResult(
                    aggregate_id=agent_id, version=v, position=position, etag=f'"{v}"'
                )

            return events, result

        return self.app.run(principal, meta, idem, decision)

    def issue_key(
        self,
        principal: Principal,
        name: str,
        role: Role,
        principal_id: str | None,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        """Issue an API key for a requester, auditor or admin (agents: register_agent)."""
        authorize(principal, "manage_directory")
        if role in (Role.AGENT, Role.LEAD):
            raise RuleViolationError("agents and leads get their key from POST /agents")
        meta = self._meta(principal)
        api_key = new_api_key()
        pid = principal_id or f"{role.value}:{name}"

        def decision() -> tuple[list[DomainEvent], Callable[[int], CommandResult]]:
            key_hash = _hash(api_key)
            events = dirs.issue_credential(EventFactory(meta), key_hash, pid, name, role, None)

            def result(position: int) -> CommandResult:
                return CommandResult(
                    aggregate_id=dirs.credential_id(key_hash),
                    version=1,
                    position=position,
                    etag='"1"',
                    status_code=201,
                    extra={"api_key": api_key, "principal_id": pid},
                )

            return events, result

        return self.app.run(principal, meta, idem, decision)

    def verify_ticket(self, principal: Principal, ticket_id: UUID) -> dict[str, Any]:
        """Recompute the hash chains of the ticket's Ticket, Assignment and Escalation
        streams and report the first broken link."""
        t = self.app.ticket(ticket_id)
        authorize(principal, "read_audit")
        streams: dict[str, list[dict[str, Any]]] = {}
        for aggregate in ticket_streams(self.app, t.id):
            stored = self.app.recorder.select_events(aggregate)
            streams[str(aggregate)] = [decode_envelope(s.state) for s in stored]
        report = verify_streams({k: v for k, v in streams.items() if v})
        return {"ticket_id": str(t.id), **report.as_dict()}

    # --- privacy ---------------------------------------------------------------

    def erase_subject(
        self,
        principal: Principal,
        subject_id: str,
        legal_basis: str,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        """Record the erasure, then destroy the subject's key: their personal data in
        every event, view, export and on the Kafka topic becomes unreadable."""
        authorize(principal, "manage_directory")
        meta = self._meta(principal)
        aggregate = privacy.subject_aggregate_id(subject_id)

        def decision() -> tuple[list[DomainEvent], Callable[[int], CommandResult]]:
            subject = self.app._fold(
                aggregate, privacy.evolve, privacy.DataSubject(subject_id=subject_id)
            )
            assert subject is not None
            if subject.erased:
                # Finish an erasure whose key destruction was interrupted.
                self.app.keys.destroy(subject_id)
            events = privacy.erase(subject, meta, legal_basis)

            def result(position: int) -> CommandResult:
                v = subject.version + 1
                return CommandResult(
                    aggregate_id=aggregate,
                    version=v,
                    position=position,
                    etag=f'"{v}"',
                    extra={"subject_id": subject_id},
                )

            return events, result

        result = self.app.run(principal, meta, idem, decision)
        self.app.keys.destroy(subject_id)
        return result

    def agents(self, principal: Principal, agent_ids: list[UUID]) -> list[dirs.Agent]:
        authorize(principal, "read_directory")
        return [self.app.agent(agent_id) for agent_id in agent_ids]

    def may(self, principal: Principal, action: str) -> bool:
        return may(principal, action)


def _hash(api_key: str) -> str:
    from engine.application import hash_key

    return hash_key(api_key)
