"""Commands on an escalation (raising one is a ticket command), and their decisions."""

from __future__ import annotations

from dataclasses import dataclass

from engine.domain import escalation as esc
from engine.domain import ticket as tk
from engine.domain.base import CommandMeta, DomainEvent
from engine.domain.commands.base import EscalationCommand
from engine.domain.values import Name, Reason


class AcknowledgeEscalation(EscalationCommand):
    note: Reason | None = None


class RecordVendorReference(EscalationCommand):
    vendor: Name
    reference: Name


class ResolveEscalation(EscalationCommand):
    note: Reason


class WithdrawEscalation(EscalationCommand):
    reason: Reason


@dataclass(frozen=True)
class EscalationState:
    """The escalation, and the ticket it belongs to (whose level an ending lowers)."""

    escalation: esc.Escalation
    ticket: tk.Ticket


def acknowledge(
    c: AcknowledgeEscalation, s: EscalationState, meta: CommandMeta
) -> list[DomainEvent]:
    return esc.acknowledge(s.escalation, meta, c.note, s.ticket.requester_id)


def record_vendor_reference(
    c: RecordVendorReference, s: EscalationState, meta: CommandMeta
) -> list[DomainEvent]:
    return esc.record_vendor_reference(s.escalation, meta, c.vendor, c.reference)


def resolve(c: ResolveEscalation, s: EscalationState, meta: CommandMeta) -> list[DomainEvent]:
    return _ended(s, meta, esc.resolve(s.escalation, meta, c.note, s.ticket.requester_id))


def withdraw(c: WithdrawEscalation, s: EscalationState, meta: CommandMeta) -> list[DomainEvent]:
    return _ended(s, meta, esc.withdraw(s.escalation, meta, c.reason, s.ticket.requester_id))


def _ended(s: EscalationState, meta: CommandMeta, events: list[DomainEvent]) -> list[DomainEvent]:
    """An escalation that ends is closed on its ticket too, in the same append."""
    return events + tk.escalation_closed(s.ticket, meta, s.escalation.id)
