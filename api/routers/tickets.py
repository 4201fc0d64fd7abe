"""Ticket commands (POST) and the ticket query (GET)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID, uuid4

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from api.deps import DeskDep, IdempotencyDep, IfMatch, PrincipalDep
from api.responses import COMMAND_RESPONSES, command_response
from api.schemas import (
    AssignRequest,
    CommandPublic,
    CommentCreate,
    EscalationCreate,
    LinkCreate,
    MergeRequest,
    PendRequest,
    ReasonOptional,
    ReasonRequired,
    ResolveRequest,
    ResumeRequest,
    SatisfactionCreate,
    TicketCreate,
    TriageRequest,
)
from engine.app.results import TicketDetails
from engine.domain.ticket import OpenTicket

router = APIRouter(prefix="/tickets", tags=["tickets"], responses=COMMAND_RESPONSES)


@router.post("", status_code=201, response_model=CommandPublic)
def open_ticket(
    body: TicketCreate, desk: DeskDep, principal: PrincipalDep, idem: IdempotencyDep
) -> JSONResponse:
    """Log a ticket; it is triaged at once from impact and urgency."""
    cmd = OpenTicket(
        ticket_id=uuid4(),
        title=body.title,
        description=body.description,
        requester_id=body.requester_id or principal.id,
        requester_name=body.requester_name,
        requester_email=body.requester_email,
        channel=body.channel,
        category=body.category,
        impact=body.impact,
        urgency=body.urgency,
    )
    return command_response(desk.open_ticket(principal, cmd, body.queue, idem))


@router.get("/{ticket_id}", response_model=TicketDetails)
def get_ticket(
    ticket_id: UUID,
    desk: DeskDep,
    principal: PrincipalDep,
    response: Response,
    version: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    as_of: Annotated[datetime | None, Query(description="ISO 8601 time with offset")] = None,
) -> TicketDetails:
    """The ticket now, at a version, or as it stood at a past moment (as_of)."""
    if as_of is not None and as_of.tzinfo is None:
        from fastapi import HTTPException

        raise HTTPException(422, "as_of: give a time zone offset, e.g. 2026-11-24T09:00:00Z")
    details = desk.details(principal, ticket_id, version=version, as_of=as_of)
    response.headers["ETag"] = details.etag
    return details


@router.post("/{ticket_id}/triage", response_model=CommandPublic)
def triage(
    ticket_id: UUID,
    body: TriageRequest,
    desk: DeskDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Set impact and urgency; the matrix gives the priority (leads may override)."""
    return command_response(
        desk.triage(
            principal,
            ticket_id,
            body.impact,
            body.urgency,
            body.priority,
            body.reason,
            if_match,
            idem,
        )
    )


@router.post("/{ticket_id}/comments", response_model=CommandPublic)
def comment(
    ticket_id: UUID,
    body: CommentCreate,
    desk: DeskDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Add a public reply or an internal note."""
    return command_response(
        desk.comment(principal, ticket_id, uuid4(), body.body, body.internal, if_match, idem)
    )


@router.post("/{ticket_id}/assign", response_model=CommandPublic)
def assign(
    ticket_id: UUID,
    body: AssignRequest,
    desk: DeskDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Route to a queue and/or an agent of the queue (reassigning needs a reason)."""
    return command_response(
        desk.assign(
            principal,
            ticket_id,
            body.queue,
            body.agent_id,
            body.reason,
            body.override_capacity_reason,
            if_match,
            idem,
        )
    )


@router.post("/{ticket_id}/accept", response_model=CommandPublic)
def accept(
    ticket_id: UUID,
    desk: DeskDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
    if_match: IfMatch = None,
) -> JSONResponse:
    """The assigned agent accepts the ticket."""
    return command_response(desk.accept(principal, ticket_id, if_match, idem))


@router.post("/{ticket_id}/release", response_model=CommandPublic)
def release(
    ticket_id: UUID,
    desk: DeskDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
    body: ReasonOptional | None = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Give the ticket back to its queue, unassigned (before work starts)."""
    return command_response(
        desk.release(principal, ticket_id, body.reason if body else None, if_match, idem)
    )


@router.post("/{ticket_id}/start", response_model=CommandPublic)
def start(
    ticket_id: UUID,
    desk: DeskDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Start work on an assigned ticket."""
    return command_response(desk.start(principal, ticket_id, if_match, idem))


@router.post("/{ticket_id}/pend", response_model=CommandPublic)
def pend(
    ticket_id: UUID,
    body: PendRequest,
    desk: DeskDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Wait on the customer or a vendor (SLA clocks pause)."""
    return command_response(
        desk.pend(principal, ticket_id, body.reason, body.waiting_on, if_match, idem)
    )


@router.post("/{ticket_id}/resume", response_model=CommandPublic)
def resume(
    ticket_id: UUID,
    desk: DeskDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
    body: ResumeRequest | None = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Resume work on a pending ticket."""
    return command_response(
        desk.resume(principal, ticket_id, body.note if body else None, if_match, idem)
    )


@router.post("/{ticket_id}/resolve", response_model=CommandPublic)
def resolve(
    ticket_id: UUID,
    body: ResolveRequest,
    desk: DeskDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Resolve with a resolution code and note."""
    return command_response(
        desk.resolve(principal, ticket_id, body.resolution_code, body.note, if_match, idem)
    )


@router.post("/{ticket_id}/reopen", response_model=CommandPublic)
def reopen(
    ticket_id: UUID,
    body: ReasonRequired,
    desk: DeskDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Reopen a resolved ticket within the reopen window."""
    return command_response(desk.reopen(principal, ticket_id, body.reason, if_match, idem))


@router.post("/{ticket_id}/close", response_model=CommandPublic)
def close(
    ticket_id: UUID,
    desk: DeskDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
    body: ReasonOptional | None = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Close a resolved ticket."""
    return command_response(
        desk.close(principal, ticket_id, body.reason if body else None, if_match, idem)
    )


@router.post("/{ticket_id}/cancel", response_model=CommandPublic)
def cancel(
    ticket_id: UUID,
    body: ReasonRequired,
    desk: DeskDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Cancel an open ticket, with a reason."""
    return command_response(desk.cancel(principal, ticket_id, body.reason, if_match, idem))


@router.post("/{ticket_id}/links", response_model=CommandPublic)
def link(
    ticket_id: UUID,
    body: LinkCreate,
    desk: DeskDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Link to another ticket (the inverse link is recorded on the other ticket)."""
    return command_response(
        desk.link(principal, ticket_id, body.ticket_id, body.relation_enum(), if_match, idem)
    )


@router.post("/{ticket_id}/merge", response_model=CommandPublic)
def merge(
    ticket_id: UUID,
    body: MergeRequest,
    desk: DeskDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Merge into another open ticket; this one closes with a pointer."""
    return command_response(
        desk.merge(principal, ticket_id, body.into_ticket_id, body.reason, if_match, idem)
    )


@router.post("/{ticket_id}/satisfaction", response_model=CommandPublic)
def satisfaction(
    ticket_id: UUID,
    body: SatisfactionCreate,
    desk: DeskDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
    if_match: IfMatch = None,
) -> JSONResponse:
    """The requester rates a resolved or closed ticket, once (1-5)."""
    return command_response(
        desk.rate(principal, ticket_id, body.score, body.comment, if_match, idem)
    )


@router.post("/{ticket_id}/escalations", status_code=201, response_model=CommandPublic)
def escalate(
    ticket_id: UUID,
    body: EscalationCreate,
    desk: DeskDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Raise an escalation; returns the escalation id."""
    return command_response(
        desk.escalate(
            principal,
            ticket_id,
            uuid4(),
            body.kind,
            body.target_type,
            body.target,
            body.reason,
            body.level,
            if_match,
            idem,
        )
    )
