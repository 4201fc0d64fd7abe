"""Request and response bodies, named by direction, separate from domain events.

A request body is its command's sendable fields: ``request_body`` derives it from the
command model (engine.domain.commands), so a command's fields, types, bounds and checks
are written once. The fields the caller does not send (the target, which comes from the
URL, and the ids the engine makes) are left out of the body's schema and refused if
sent. Bodies refuse unknown fields: an ``actor`` in a body is refused, because the actor
is always the authenticated principal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias, TypeVar, cast
from uuid import UUID

from pydantic import BaseModel, Field, create_model
from pydantic.json_schema import SkipJsonSchema

from engine.domain.commands import directory as dc
from engine.domain.commands import escalations as ec
from engine.domain.commands import service_levels as sc
from engine.domain.commands import tickets as tc
from engine.domain.commands.base import Command
from engine.domain.directory import Role

C = TypeVar("C", bound=Command)


class Body(Command):
    """A request body: the part of a command its caller sends."""

    command: ClassVar[type[Command]] = Command
    wire_names: ClassVar[dict[str, str]] = {}  # command field -> its name in the body

    def to_command(self, command: type[C] | None = None, **address: Any) -> C:
        """The command (``command``, or the one this body was cut from) for ``address``."""
        target = command or self.command
        sent = {
            name: getattr(self, self.wire_names.get(name, name))
            for name in target.model_fields
            if name not in target.address and name not in target.makes
        }
        return cast(C, target.model_validate({**sent, **address}))


def request_body(
    command: type[Command], name: str, wire_names: dict[str, str] | None = None
) -> type[Body]:
    """The body of ``command``'s request, named ``name`` in the API's documents;
    ``wire_names`` gives a command field another name in the body."""
    wire_names = wire_names or {}
    hidden = {*command.address, *command.makes} - set(wire_names.values())
    skip: Any = SkipJsonSchema
    not_sent = (skip[None], None)  # out of the schema, and refused unless null
    fields: dict[str, Any] = dict.fromkeys(hidden, not_sent)
    for field_name, wire in wire_names.items():
        fields[field_name] = not_sent
        info = command.model_fields[field_name]
        fields[wire] = (info.annotation, info)
    body = cast(
        type[Body], create_model(name, __base__=(command, Body), __module__=__name__, **fields)
    )
    body.command = command
    body.wire_names = wire_names
    body.__doc__ = None  # the command's docstring is not the body's description
    return body


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


# --- the request bodies, each cut from its command ----------------------------------------
# Every body is a Body to a type checker; at run time it is the class request_body makes.

if TYPE_CHECKING:
    TicketCreate: TypeAlias = Body
    TriageRequest: TypeAlias = Body
    CommentCreate: TypeAlias = Body
    AssignRequest: TypeAlias = Body
    ReasonOptional: TypeAlias = Body
    ReasonRequired: TypeAlias = Body
    PendRequest: TypeAlias = Body
    ResumeRequest: TypeAlias = Body
    ResolveRequest: TypeAlias = Body
    LinkCreate: TypeAlias = Body
    MergeRequest: TypeAlias = Body
    SatisfactionCreate: TypeAlias = Body
    EscalationCreate: TypeAlias = Body
    NoteOptional: TypeAlias = Body
    VendorReferenceCreate: TypeAlias = Body
    NoteRequired: TypeAlias = Body
    QueueCreate: TypeAlias = Body
    AgentCreate: TypeAlias = Body
    AgentUpdate: TypeAlias = Body
    ApiKeyCreate: TypeAlias = Body
    ApiKeyRevoke: TypeAlias = Body
    ErasureRequest: TypeAlias = Body
    SlaPolicyUpdate: TypeAlias = Body
    CalendarCreate: TypeAlias = Body
    RoutingPolicyUpdate: TypeAlias = Body
    EscalationRulesUpdate: TypeAlias = Body
    AvailabilityUpdate: TypeAlias = Body
    ScheduleUpdate: TypeAlias = Body
else:
    TicketCreate = request_body(tc.OpenTicket, "TicketCreate")
    TriageRequest = request_body(tc.Triage, "TriageRequest")
    CommentCreate = request_body(tc.Comment, "CommentCreate")
    AssignRequest = request_body(tc.Assign, "AssignRequest")
    ReasonOptional = request_body(tc.Release, "ReasonOptional")  # also close
    ReasonRequired = request_body(tc.Reopen, "ReasonRequired")  # also cancel, withdraw
    PendRequest = request_body(tc.Pend, "PendRequest")
    ResumeRequest = request_body(tc.Resume, "ResumeRequest")
    ResolveRequest = request_body(tc.Resolve, "ResolveRequest")
    LinkCreate = request_body(tc.Link, "LinkCreate", {"other_ticket_id": "ticket_id"})
    MergeRequest = request_body(tc.Merge, "MergeRequest")
    SatisfactionCreate = request_body(tc.Rate, "SatisfactionCreate")
    EscalationCreate = request_body(tc.Escalate, "EscalationCreate")
    NoteOptional = request_body(ec.AcknowledgeEscalation, "NoteOptional")
    VendorReferenceCreate = request_body(ec.RecordVendorReference, "VendorReferenceCreate")
    NoteRequired = request_body(ec.ResolveEscalation, "NoteRequired")
    QueueCreate = request_body(dc.CreateQueue, "QueueCreate")
    AgentCreate = request_body(dc.RegisterAgent, "AgentCreate")
    AgentUpdate = request_body(dc.UpdateAgent, "AgentUpdate")
    ApiKeyCreate = request_body(dc.IssueApiKey, "ApiKeyCreate")
    ApiKeyRevoke = request_body(dc.RevokeApiKey, "ApiKeyRevoke")
    ErasureRequest = request_body(dc.EraseSubject, "ErasureRequest")
    SlaPolicyUpdate = request_body(sc.SetSlaPolicy, "SlaPolicyUpdate")
    CalendarCreate = request_body(sc.SetCalendar, "CalendarCreate")
    RoutingPolicyUpdate = request_body(sc.SetRoutingPolicy, "RoutingPolicyUpdate")
    EscalationRulesUpdate = request_body(sc.SetEscalationRules, "EscalationRulesUpdate")
    AvailabilityUpdate = request_body(sc.SetAvailability, "AvailabilityUpdate")
    ScheduleUpdate = request_body(sc.SetSchedule, "ScheduleUpdate")
