"""The event catalogue: importing this module registers every event type."""

from __future__ import annotations

from engine.domain import (
    assignment,
    audit,
    availability,
    directory,
    escalation,
    idempotency,
    privacy,
    routing,
    sla,
    ticket,
)
from engine.domain.base import EVENT_TYPES, DomainEvent

__all__ = [
    "EVENT_TYPES",
    "DomainEvent",
    "assignment",
    "audit",
    "availability",
    "directory",
    "escalation",
    "idempotency",
    "privacy",
    "routing",
    "sla",
    "ticket",
]
