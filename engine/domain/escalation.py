"""The Escalation aggregate: one per escalation of a ticket."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from engine.domain.base import (
    CommandMeta,
    DomainEvent,
    EventFactory,
    InvalidTransitionError,
    Kind,
    RuleViolationError,
    subject_id_field,
)

EscalationKind = Literal["functional", "hierarchical"]
TargetType = Literal["queue", "department", "vendor", "manager"]
Trigger = Literal["manual", "sla_at_risk", "sla_breached"]


class EscalationStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    WITHDRAWN = "withdrawn"


class EscalationEvent(DomainEvent):
    aggregate_type = "Escalation"
    ticket_id: UUID


class EscalationRaised(EscalationEvent):
    type_name = "EscalationRaised"
    personal_fields = ("reason",)
    subject_field = "subject_id"
    kind: EscalationKind
    target_type: TargetType
    target: str
    reason: str
    level: int
    trigger: Trigger = "manual"
    subject_id: str | None = subject_id_field()


class EscalationAcknowledged(EscalationEvent):
    type_name = "EscalationAcknowledged"
    personal_fields = ("note",)
    subject_field = "subject_id"
    note: str | None = None
    subject_id: str | None = subject_id_field()


class VendorReferenceRecorded(EscalationEvent):
    type_name = "VendorReferenceRecorded"
    vendor: str
    reference: str


class EscalationResolved(EscalationEvent):
    type_name = "EscalationResolved"
    personal_fields = ("note",)
    subject_field = "subject_id"
    note: str
    subject_id: str | None = subject_id_field()


class EscalationWithdrawn(EscalationEvent):
    type_name = "EscalationWithdrawn"
    personal_fields = ("reason",)
    subject_field = "subject_id"
    reason: str
    subject_id: str | None = subject_id_field()


class Escalation(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: UUID
    ticket_id: UUID
    version: int
    status: EscalationStatus
    kind: EscalationKind
    target_type: TargetType
    target: str
    reason: str
    level: int
    trigger: Trigger
    vendor_reference: str | None = None
    outcome: str | None = None


def evolve(state: Escalation | None, event: DomainEvent) -> Escalation:
    if isinstance(event, EscalationRaised):
        return Escalation(
            id=event.originator_id,
            ticket_id=event.ticket_id,
            version=event.originator_version,
            status=EscalationStatus.OPEN,
            kind=event.kind,
            target_type=event.target_type,
            target=event.target,
            reason=event.reason,
            level=event.level,
            trigger=event.trigger,
        )
    assert state is not None, "an escalation's first event is EscalationRaised"
    s = state.model_copy(update={"version": event.originator_version})
    match event:
        case EscalationAcknowledged():
            return s.model_copy(update={"status": EscalationStatus.ACKNOWLEDGED})
        case VendorReferenceRecorded():
            return s.model_copy(update={"vendor_reference": event.reference})
        case EscalationResolved():
            return s.model_copy(update={"status": EscalationStatus.RESOLVED, "outcome": event.note})
        case EscalationWithdrawn():
            return s.model_copy(
                update={"status": EscalationStatus.WITHDRAWN, "outcome": event.reason}
            )
    return s


ALLOWED: dict[EscalationStatus, frozenset[str]] = {
    EscalationStatus.OPEN: frozenset({"acknowledge", "vendor-reference", "resolve", "withdraw"}),
    EscalationStatus.ACKNOWLEDGED: frozenset({"vendor-reference", "resolve", "withdraw"}),
    EscalationStatus.RESOLVED: frozenset(),
    EscalationStatus.WITHDRAWN: frozenset(),
}


def _require(e: Escalation, action: str) -> None:
    if action not in ALLOWED[e.status]:
        raise InvalidTransitionError("escalation", e.status.value, action, ALLOWED[e.status])


def raise_escalation(
    meta: CommandMeta,
    escalation_id: UUID,
    ticket_id: UUID,
    kind: EscalationKind,
    target_type: TargetType,
    target: str,
    reason: str,
    level: int,
    trigger: Trigger,
    subject: str | None = None,
) -> list[DomainEvent]:
    """Raise an escalation of a ticket; ``subject`` is its requester (seals the reason)."""
    if kind == "hierarchical" and target_type != "manager":
        raise RuleViolationError("a hierarchical escalation targets a manager (target_type)")
    if kind == "functional" and target_type == "manager":
        raise RuleViolationError(
            "a functional escalation targets a queue, department or vendor (target_type)"
        )
    return [
        EventFactory(meta).make(
            EscalationRaised,
            escalation_id,
            1,
            ticket_id=ticket_id,
            kind=kind,
            target_type=target_type,
            target=target,
            reason=reason,
            level=level,
            trigger=trigger,
            subject_id=subject,
        )
    ]


def acknowledge(
    e: Escalation, meta: CommandMeta, note: str | None, subject: str | None = None
) -> list[DomainEvent]:
    _require(e, "acknowledge")
    return [
        EventFactory(meta).make(
            EscalationAcknowledged,
            e.id,
            e.version + 1,
            ticket_id=e.ticket_id,
            note=note,
            subject_id=subject,
        )
    ]


def record_vendor_reference(
    e: Escalation, meta: CommandMeta, vendor: str, reference: str
) -> list[DomainEvent]:
    _require(e, "vendor-reference")
    if e.target_type != "vendor":
        raise RuleViolationError(
            f"this escalation targets a {e.target_type}, not a vendor: no vendor reference"
        )
    return [
        EventFactory(meta).make(
            VendorReferenceRecorded,
            e.id,
            e.version + 1,
            ticket_id=e.ticket_id,
            vendor=vendor,
            reference=reference,
        )
    ]


def resolve(
    e: Escalation, meta: CommandMeta, note: str, subject: str | None = None
) -> list[DomainEvent]:
    _require(e, "resolve")
    return [
        EventFactory(meta).make(
            EscalationResolved,
            e.id,
            e.version + 1,
            ticket_id=e.ticket_id,
            note=note,
            subject_id=subject,
        )
    ]


def withdraw(
    e: Escalation, meta: CommandMeta, reason: str, subject: str | None = None
) -> list[DomainEvent]:
    _require(e, "withdraw")
    return [
        EventFactory(meta).make(
            EscalationWithdrawn,
            e.id,
            e.version + 1,
            ticket_id=e.ticket_id,
            reason=reason,
            subject_id=subject,
        )
    ]


KIND = Kind("Escalation", evolve)
