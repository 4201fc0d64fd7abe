"""Directory (queues, agents, API keys), privacy (erasure) and verification."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from engine.app.application import (
    Idempotency,
    hash_key,
    new_api_key,
)
from engine.app.permissions import Principal, authorize, may
from engine.app.results import CommandResult
from engine.app.usecases.base import UseCases
from engine.domain import directory as dirs
from engine.domain import privacy
from engine.domain.base import (
    DomainEvent,
    EventFactory,
    RuleViolationError,
)
from engine.domain.directory import Role
from engine.integrity.audit import ticket_streams, verify_streams
from engine.stores.envelope import decode_envelope


class DirectoryUseCases(UseCases):
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
                make, hash_key(api_key), f"agent:{agent_id}", name, role, agent_id
            )

            def result(position: int) -> CommandResult:
                return CommandResult(
                    aggregate_id=agent_id,
                    version=1,
                    position=position,
                    etag='"1"',
                    status_code=201,
                    extra={
                        "api_key": api_key,
                        "principal_id": f"agent:{agent_id}",
                        "credential_id": str(dirs.credential_id(hash_key(api_key))),
                    },
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
            key_hash = hash_key(api_key)
            events = dirs.issue_credential(EventFactory(meta), key_hash, pid, name, role, None)

            def result(position: int) -> CommandResult:
                return CommandResult(
                    aggregate_id=dirs.credential_id(key_hash),
                    version=1,
                    position=position,
                    etag='"1"',
                    status_code=201,
                    extra={
                        "api_key": api_key,
                        "principal_id": pid,
                        "credential_id": str(dirs.credential_id(key_hash)),
                    },
                )

            return events, result

        return self.app.run(principal, meta, idem, decision)

    def revoke_key(
        self,
        principal: Principal,
        credential_id: UUID,
        reason: str,
        idem: Idempotency | None = None,
    ) -> CommandResult:
        """Revoke an API key (of anyone, agents and leads included). Processes that
        remembered the key's principal stop accepting it within PRINCIPAL_TTL_S."""
        authorize(principal, "manage_directory")
        meta = self._meta(principal)

        def decision() -> tuple[list[DomainEvent], Callable[[int], CommandResult]]:
            state = self.app.credential_by_id(credential_id)
            events = dirs.revoke_credential(state, EventFactory(meta), reason)
            version = events[-1].originator_version

            def result(position: int) -> CommandResult:
                return CommandResult(
                    aggregate_id=credential_id,
                    version=version,
                    position=position,
                    etag=f'"{version}"',
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
        # Remembered states hold no personal data (see TicketingApp._current); dropping
        # them anyway keeps that true should a remembered form ever change.
        self.app.streams.forget_states()
        return result

    def agents(self, principal: Principal, agent_ids: list[UUID]) -> list[dirs.Agent]:
        authorize(principal, "read_directory")
        return [self.app.agent(agent_id) for agent_id in agent_ids]

    def may(self, principal: Principal, action: str) -> bool:
        return may(principal, action)
