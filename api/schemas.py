"""Request and response bodies, named by direction, separate from domain events.

Request bodies forbid unknown fields: an ``actor`` in a body is refused, because the
actor is always the authenticated principal.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from engine.domain.directory import Role
from engine.domain.escalation import EscalationKind, TargetType
from engine.domain.priority import Level, Priority
from engine.domain.ticket import Channel, Relation, WaitingOn


def _encodable(value: str) -> str:
    """Refuse text that is not valid Unicode (e.g. a lone surrogate sent as \\ud800)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text contains an unpaired surrogate; send valid UTF-8") from None
    return value


Encodable = AfterValidator(_encodable)
_Strip = {"strip_whitespace": True, "min_length": 1}
Name = Annotated[str, StringConstraints(**_Strip, max_length=100), Encodable]
Title = Annotated[str, StringConstraints(**_Strip, max_length=200), Encodable]
Text = Annotated[str, StringConstraints(**_Strip, max_length=10000), Encodable]
Reason = Annotated[str, StringConstraints(**_Strip, max_length=2000), Encodable]
QueueName = Annotated[
    str, StringConstraints(**_Strip, max_length=64, pattern=r"^[\w.\- ]+$"), Encodable
]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TicketCreate(Body):
    title: Title
    description: Text
    requester_id: Name | None = Field(
        default=None, description="who the ticket is for; requesters always file for themselves"
    )
    requester_name: Name | None = None
    requester_email: EmailStr | None = None
    channel: Channel = Channel.API
    category: Name
    impact: Level
    urgency: Level
    queue: QueueName | None = None


class TriageRequest(Body):
    impact: Level
    urgency: Level
    priority: Priority | None = Field(
        default=None, description="override of the matrix's priority (leads; needs a reason)"
    )
    reason: Reason | None = None


class CommentCreate(Body):
    body: Text
    internal: bool = False


class AssignRequest(Body):
    queue: QueueName | None = None
    agent_id: UUID | None = None
    reason: Reason | None = None
    override_capacity_reason: Reason | None = None


class ReasonOptional(Body):
    reason: Reason | None = None


class ReasonRequired(Body):
    reason: Reason


class PendRequest(Body):
    reason: Reason
    waiting_on: WaitingOn = "customer"


class ResumeRequest(Body):
    note: Reason | None = None


class ResolveRequest(Body):
    resolution_code: Name
    note: Text


class LinkCreate(Body):
    ticket_id: UUID
    relation: Literal["parent", "child", "related", "duplicate_of"]

    def relation_enum(self) -> Relation:
        return Relation(self.relation)


class MergeRequest(Body):
    into_ticket_id: UUID
    reason: Reason | None = None


class SatisfactionCreate(Body):
    score: int = Field(ge=1, le=5)
    comment: Reason | None = None


class EscalationCreate(Body):
    kind: EscalationKind
    target_type: TargetType
    target: Name
    reason: Reason
    level: int | None = Field(default=None, ge=1, le=10)


class NoteOptional(Body):
    note: Reason | None = None


class VendorReferenceCreate(Body):
    vendor: Name
    reference: Name


class NoteRequired(Body):
    note: Reason


class QueueCreate(Body):
    name: QueueName
    description: Reason | None = None


class AgentCreate(Body):
    name: Name
    email: EmailStr | None = None
    role: Literal["agent", "lead"] = "agent"
    queues: list[QueueName] = Field(default_factory=list, max_length=50)
    capacity: int = Field(default=10, ge=1, le=1000)


class AgentUpdate(Body):
    queues: list[QueueName] | None = Field(default=None, max_length=50)
    capacity: int | None = Field(default=None, ge=1, le=1000)
    active: bool | None = None
    reason: Reason | None = None


class ApiKeyCreate(Body):
    name: Name
    role: Literal["requester", "auditor", "admin"]
    principal_id: Name | None = Field(
        default=None, description="stable id of the person (defaults to role:name)"
    )


class ApiKeyRevoke(Body):
    reason: Reason = Field(description="why the key stops working (recorded)")


class CommandPublic(BaseModel):
    """What every command returns: the aggregate, its new version, the log position."""

    aggregate_id: UUID
    version: int
    position: int
    replayed: bool = Field(description="true when this answers a retried Idempotency-Key")
    extra: dict[str, Any] = {}


class AgentPublic(BaseModel):
    id: UUID
    name: str
    email: str | None
    role: Role
    queues: list[str]
    capacity: int
    active: bool
    load: int
    version: int


class ErasureRequest(Body):
    legal_basis: Reason = Field(description="e.g. GDPR Art. 17(1)(a), request ref. 2026-114")
