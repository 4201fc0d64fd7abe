"""Commands on the desk's directory (queues, agents, API keys) and on data subjects
(erasure), and their decisions."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar
from uuid import UUID, uuid4

from pydantic import EmailStr, Field

from engine.domain import directory as dirs
from engine.domain import privacy
from engine.domain.base import CommandMeta, DomainEvent, EventFactory, RuleViolationError
from engine.domain.commands.base import AgentCommand, Command
from engine.domain.directory import Role
from engine.domain.values import Name, QueueName, Reason


def new_api_key() -> str:
    """A fresh API key: shown once to its holder, recorded only as its hash."""
    return "tk_" + secrets.token_urlsafe(32)


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


class CreateQueue(Command):
    name: QueueName
    description: Reason | None = None


class RegisterAgent(Command):
    makes = ("agent_id", "api_key")
    agent_id: UUID = Field(default_factory=uuid4)
    api_key: str = Field(default_factory=new_api_key, repr=False)
    name: Name
    email: EmailStr | None = None
    role: Literal["agent", "lead"] = "agent"
    queues: list[QueueName] = Field(default_factory=list, max_length=50)
    capacity: int = Field(default=10, ge=1, le=1000)


class UpdateAgent(AgentCommand):
    queues: list[QueueName] | None = Field(default=None, max_length=50)
    capacity: int | None = Field(default=None, ge=1, le=1000)
    active: bool | None = None
    reason: Reason | None = None


class IssueApiKey(Command):
    makes = ("api_key",)
    api_key: str = Field(default_factory=new_api_key, repr=False)
    name: Name
    role: Literal["requester", "auditor", "admin"]
    principal_id: UUID = Field(
        default_factory=uuid4,
        description="the holder's opaque id (a new random one when not sent); send a "
        "holder's id to give them another key. The name is personal data, sealed",
    )

    @property
    def principal(self) -> str:
        return str(self.principal_id)


class RevokeApiKey(Command):
    address = ("credential_id",)
    credential_id: UUID
    reason: Reason = Field(description="why the key stops working (recorded)")


class EraseSubject(Command):
    address = ("subject_id",)
    subject_id: str = Field(min_length=1, max_length=100)
    legal_basis: Reason = Field(description="e.g. GDPR Art. 17(1)(a), request ref. 2026-114")


S = TypeVar("S")


@dataclass(frozen=True)
class Found(Generic[S]):
    """The one stream a command reads, or None where it has no events yet."""

    state: S


def create_queue(
    c: CreateQueue, s: Found[dirs.Queue | None], meta: CommandMeta
) -> list[DomainEvent]:
    if s.state is not None:
        raise RuleViolationError(f"queue {c.name!r} already exists")
    return dirs.create_queue(meta, c.name, c.description)


def register_agent(c: RegisterAgent, s: None, meta: CommandMeta) -> list[DomainEvent]:
    """Register an agent with their API key's credential (the key is stored hashed)."""
    events = dirs.register_agent(
        meta, c.agent_id, c.name, c.email, Role(c.role), c.queues, c.capacity
    )
    events += dirs.issue_credential(
        EventFactory(meta),
        hash_key(c.api_key),
        dirs.agent_principal(c.agent_id),
        c.name,
        Role(c.role),
        c.agent_id,
    )
    return events


def update_agent(c: UpdateAgent, s: Found[dirs.Agent], meta: CommandMeta) -> list[DomainEvent]:
    if c.queues is None and c.capacity is None and c.active is None:
        raise RuleViolationError("name at least one of queues, capacity, active to change")
    return dirs.update_agent(s.state, meta, c.queues, c.capacity, c.active, c.reason)


def issue_api_key(c: IssueApiKey, s: None, meta: CommandMeta) -> list[DomainEvent]:
    """An API key for a requester, auditor or admin (agents get theirs when registered)."""
    role = Role(c.role)
    if role in (Role.AGENT, Role.LEAD):
        raise RuleViolationError("agents and leads get their key from POST /agents")
    return dirs.issue_credential(
        EventFactory(meta), hash_key(c.api_key), c.principal, c.name, role, None
    )


def revoke_api_key(
    c: RevokeApiKey, s: Found[dirs.Credential | None], meta: CommandMeta
) -> list[DomainEvent]:
    return dirs.revoke_credential(s.state, EventFactory(meta), c.reason)


def erase_subject(
    c: EraseSubject, s: Found[privacy.DataSubject], meta: CommandMeta
) -> list[DomainEvent]:
    return privacy.erase(s.state, meta, c.legal_basis)


class BootstrapAdmin(Command):
    """The first start's admin credential, recorded once with the bootstrap marker."""

    api_key: str = Field(repr=False)


def bootstrap_admin(c: BootstrapAdmin, s: None, meta: CommandMeta) -> list[DomainEvent]:
    """The admin key's credential and the marker at a fixed id and version 1, so that two
    processes starting at once record it once: the other's append conflicts."""
    make = EventFactory(meta)
    events = dirs.issue_credential(make, hash_key(c.api_key), "admin", "admin", Role.ADMIN, None)
    events.append(
        make.make(dirs.SystemBootstrapped, dirs.BOOTSTRAP_ID, 1, admin_principal_id="admin")
    )
    return events
