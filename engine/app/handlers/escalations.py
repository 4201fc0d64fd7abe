"""The escalation commands' rows (raising one is a ticket command)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.app.handlers.tickets import last_version
from engine.app.repository import Repository
from engine.app.results import stream_etag
from engine.app.runner import Handler, Outcome
from engine.domain.base import DomainEvent
from engine.domain.commands import escalations as cmd
from engine.domain.commands.base import Command, EscalationCommand


def load_escalation(repo: Repository, c: EscalationCommand) -> cmd.EscalationState:
    e = repo.escalation(c.escalation_id)
    return cmd.EscalationState(escalation=e, ticket=repo.ticket(e.ticket_id, deciding=True))


def escalation_answer(
    c: EscalationCommand, s: cmd.EscalationState, events: list[DomainEvent]
) -> Outcome:
    version = last_version(events, s.escalation.id, s.escalation.version)
    return Outcome(aggregate_id=s.escalation.id, version=version, etag=stream_etag(version))


def on_escalation(
    decide: Callable[[Any, cmd.EscalationState, Any], list[DomainEvent]],
) -> Handler[Any, cmd.EscalationState]:
    """Whoever works escalations may; If-Match on the escalation's version."""
    return Handler(
        action="work_escalation",
        load=load_escalation,
        decide=decide,
        answer=escalation_answer,
        etag=lambda s: stream_etag(s.escalation.version),
        covers=lambda s: {s.escalation.id: s.escalation.version},
        resource="escalation",
    )


HANDLERS: dict[type[Command], Handler[Any, Any]] = {
    cmd.AcknowledgeEscalation: on_escalation(cmd.acknowledge),
    cmd.RecordVendorReference: on_escalation(cmd.record_vendor_reference),
    cmd.ResolveEscalation: on_escalation(cmd.resolve),
    cmd.WithdrawEscalation: on_escalation(cmd.withdraw),
}
