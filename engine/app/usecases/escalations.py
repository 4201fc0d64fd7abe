"""Escalation commands: raise (with the ticket's level), acknowledge, vendor
reference, resolve, withdraw."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from engine.app.application import (
    Idempotency,
    etag,
)
from engine.app.permissions import Principal, authorize
from engine.app.results import CommandResult
from engine.app.usecases.base import UseCases, _last_version, check_if_match
from engine.domain import escalation as esc
from engine.domain import ticket as tk
from engine.domain.base import (
    CommandMeta,
    DomainEvent,
)


class EscalationUseCases(UseCases):
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
            t = self.app.ticket(ticket_id, deciding=True)
            a = self.app.assignment(ticket_id)
            authorize(principal, "escalate", requester_id=t.requester_id)
            check_if_match(if_match, etag(t.version, a.version), "ticket")
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
            check_if_match(if_match, f'"{e.version}"', "escalation")
            events = decide(e, meta)
            if closes:
                events += tk.escalation_closed(
                    self.app.ticket(e.ticket_id, deciding=True), meta, e.id
                )
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
