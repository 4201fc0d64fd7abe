"""Erasure of a data subject's personal data (the right to erasure).

The erasure is itself recorded (who, when, on what legal basis); the personal data is
made unreadable by destroying the subject's key, not by changing any event.
"""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict

from engine.domain.base import (
    CommandMeta,
    DomainEvent,
    EventFactory,
    Kind,
    RuleViolationError,
    derived_id,
)


def subject_aggregate_id(subject_id: str) -> UUID:
    return derived_id("subject", subject_id)


class SubjectErased(DomainEvent):
    type_name = "SubjectErased"
    aggregate_type = "DataSubject"
    subject_id: str
    legal_basis: str


class DataSubject(BaseModel):
    model_config = ConfigDict(frozen=True)
    subject_id: str
    version: int = 0
    erased: bool = False


def evolve(state: DataSubject, event: DomainEvent) -> DataSubject:
    if isinstance(event, SubjectErased):
        return state.model_copy(update={"version": event.originator_version, "erased": True})
    return state.model_copy(update={"version": event.originator_version})


def erase(subject: DataSubject, meta: CommandMeta, legal_basis: str) -> list[DomainEvent]:
    if subject.erased:
        raise RuleViolationError(f"data subject {subject.subject_id} is already erased")
    return [
        EventFactory(meta).make(
            SubjectErased,
            subject_aggregate_id(subject.subject_id),
            subject.version + 1,
            subject_id=subject.subject_id,
            legal_basis=legal_basis,
        )
    ]


KIND = Kind("DataSubject", evolve, lambda subject_id: DataSubject(subject_id=subject_id))
"""Keyed by the subject's id; a subject is not erased until erased."""
