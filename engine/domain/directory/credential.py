"""The Credential aggregate: an API key, addressed by its hash (never the key itself)."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict

from engine.domain.base import (
    DomainEvent,
    EventFactory,
    Kind,
    NotFoundError,
    RuleViolationError,
    derived_id,
    subject_id_field,
)
from engine.domain.directory.roles import Role


def credential_id(key_hash: str) -> UUID:
    return derived_id("credential", key_hash)


class CredentialIssued(DomainEvent):
    """An API key was issued. Only its SHA-256 hash is recorded, never the key."""

    type_name = "CredentialIssued"
    aggregate_type = "Credential"
    personal_fields = ("name",)
    subject_field = "principal_id"
    principal_id: str
    name: str
    role: Role
    agent_id: UUID | None = None


class CredentialRevoked(DomainEvent):
    type_name = "CredentialRevoked"
    aggregate_type = "Credential"
    personal_fields = ("reason",)
    subject_field = "subject_id"
    reason: str
    subject_id: str | None = subject_id_field("the key holder's principal")


class Credential(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: UUID
    version: int
    principal_id: str
    name: str
    role: Role
    agent_id: UUID | None
    revoked: bool = False


def evolve_credential(state: Credential | None, event: DomainEvent) -> Credential:
    if isinstance(event, CredentialIssued):
        return Credential(
            id=event.originator_id,
            version=event.originator_version,
            principal_id=event.principal_id,
            name=event.name,
            role=event.role,
            agent_id=event.agent_id,
        )
    assert state is not None
    s = state.model_copy(update={"version": event.originator_version})
    if isinstance(event, CredentialRevoked):
        return s.model_copy(update={"revoked": True})
    return s


def issue_credential(
    make: EventFactory,
    key_hash: str,
    principal_id: str,
    name: str,
    role: Role,
    agent_id: UUID | None,
) -> list[DomainEvent]:
    return [
        make.make(
            CredentialIssued,
            credential_id(key_hash),
            1,
            principal_id=principal_id,
            name=name,
            role=role,
            agent_id=agent_id,
        )
    ]


def revoke_credential(
    state: Credential | None, make: EventFactory, reason: str
) -> list[DomainEvent]:
    """Revoke an API key: from then on it authenticates nobody (its history stays)."""
    if state is None:
        raise NotFoundError("API key not found")
    if state.revoked:
        raise RuleViolationError(f"API key {state.id} is already revoked")
    return [
        make.make(
            CredentialRevoked,
            state.id,
            state.version + 1,
            reason=reason,
            subject_id=state.principal_id,
        )
    ]


KIND = Kind("Credential", evolve_credential)
