"""Ticket commands (POST) and the ticket query (GET)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.responses import JSONResponse

from api.deps import (
    TIME_PARAMETER,
    DeskDep,
    PrincipalDep,
    RuntimeDep,
    SendDep,
    SendNewDep,
    invalid,
)
from api.responses import COMMAND_RESPONSES
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
from engine.app.runner import TrailingReads
from engine.bootstrap import Runtime
from engine.domain.commands import tickets as c
from engine.domain.values import Instant

router = APIRouter(prefix="/tickets", tags=["tickets"], responses=COMMAND_RESPONSES)
Position = Annotated[
    int | None, Query(ge=0, le=2**63 - 1, description="wait until this server has read it")
]


def reads_at(runtime: Runtime, position: int) -> None:
    """Wait until this server's store reads hold ``position`` (a command's answer, from
    any server: read-your-writes across servers), up to TICKETING_WAIT_TIMEOUT_S."""
    recorder = runtime.app.recorder
    timeout = runtime.settings.wait_timeout_s
    if isinstance(recorder, TrailingReads):
        if not recorder.wait_for_position(position, timeout):
            raise TimeoutError(
                f"this server has not read position {position} within {timeout:g} s; retry later"
            )
        return
    # The embedded store's head is the truth: a later position was never recorded.
    head = recorder.max_notification_id() or 0
    if position > head:
        raise HTTPException(
            422, f"min_position: position {position} has not been recorded (head {head})"
        )


@router.post("", status_code=201, response_model=CommandPublic)
def open_ticket(body: TicketCreate, send: SendNewDep) -> JSONResponse:
    """Log a ticket; it is triaged at once from impact and urgency."""
    return send(body.to_command())


@router.get("/{ticket_id}", response_model=TicketDetails)
def get_ticket(
    ticket_id: UUID,
    desk: DeskDep,
    principal: PrincipalDep,
    response: Response,
    runtime: RuntimeDep,
    version: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    as_of: Annotated[
        Instant | None, Query(description=f"{TIME_PARAMETER}; not in the future")
    ] = None,
    min_position: Position = None,
) -> TicketDetails:
    """The ticket now, at a version, or as it stood at a past moment (as_of)."""
    if as_of is not None and as_of > desk.clock():
        raise invalid("query", "as_of", "is in the future; ask about a past moment or now")
    if min_position is not None:
        reads_at(runtime, min_position)
    details = desk.queries.ticket(principal, ticket_id, version=version, as_of=as_of)
    response.headers["ETag"] = details.etag
    return details


@router.post("/{ticket_id}/triage", response_model=CommandPublic)
def triage(ticket_id: UUID, body: TriageRequest, send: SendDep) -> JSONResponse:
    """Set impact and urgency; the matrix gives the priority (leads may override)."""
    return send(body.to_command(ticket_id=ticket_id))


@router.post("/{ticket_id}/comments", response_model=CommandPublic)
def comment(ticket_id: UUID, body: CommentCreate, send: SendDep) -> JSONResponse:
    """Add a public reply or an internal note."""
    return send(body.to_command(ticket_id=ticket_id))


@router.post("/{ticket_id}/assign", response_model=CommandPublic)
def assign(ticket_id: UUID, body: AssignRequest, send: SendDep) -> JSONResponse:
    """Route to a queue and/or an agent of the queue (reassigning needs a reason)."""
    return send(body.to_command(ticket_id=ticket_id))


@router.post("/{ticket_id}/accept", response_model=CommandPublic)
def accept(ticket_id: UUID, send: SendDep) -> JSONResponse:
    """The assigned agent accepts the ticket."""
    return send(c.Accept(ticket_id=ticket_id))


@router.post("/{ticket_id}/release", response_model=CommandPublic)
def release(ticket_id: UUID, send: SendDep, body: ReasonOptional | None = None) -> JSONResponse:
    """Give the ticket back to its queue, unassigned (before work starts)."""
    return send((body or ReasonOptional()).to_command(c.Release, ticket_id=ticket_id))


@router.post("/{ticket_id}/start", response_model=CommandPublic)
def start(ticket_id: UUID, send: SendDep) -> JSONResponse:
    """Start work on an assigned ticket."""
    return send(c.Start(ticket_id=ticket_id))


@router.post("/{ticket_id}/pend", response_model=CommandPublic)
def pend(ticket_id: UUID, body: PendRequest, send: SendDep) -> JSONResponse:
    """Wait on the customer or a vendor (SLA clocks pause)."""
    return send(body.to_command(ticket_id=ticket_id))


@router.post("/{ticket_id}/resume", response_model=CommandPublic)
def resume(ticket_id: UUID, send: SendDep, body: ResumeRequest | None = None) -> JSONResponse:
    """Resume work on a pending ticket."""
    return send((body or ResumeRequest()).to_command(ticket_id=ticket_id))


@router.post("/{ticket_id}/resolve", response_model=CommandPublic)
def resolve(ticket_id: UUID, body: ResolveRequest, send: SendDep) -> JSONResponse:
    """Resolve with a resolution code and note."""
    return send(body.to_command(ticket_id=ticket_id))


@router.post("/{ticket_id}/reopen", response_model=CommandPublic)
def reopen(ticket_id: UUID, body: ReasonRequired, send: SendDep) -> JSONResponse:
    """Reopen a resolved ticket within the reopen window."""
    return send(body.to_command(c.Reopen, ticket_id=ticket_id))


@router.post("/{ticket_id}/close", response_model=CommandPublic)
def close(ticket_id: UUID, send: SendDep, body: ReasonOptional | None = None) -> JSONResponse:
    """Close a resolved ticket."""
    return send((body or ReasonOptional()).to_command(c.Close, ticket_id=ticket_id))


@router.post("/{ticket_id}/cancel", response_model=CommandPublic)
def cancel(ticket_id: UUID, body: ReasonRequired, send: SendDep) -> JSONResponse:
    """Cancel an open ticket, with a reason."""
    return send(body.to_command(c.Cancel, ticket_id=ticket_id))


@router.post("/{ticket_id}/links", response_model=CommandPublic)
def link(ticket_id: UUID, body: LinkCreate, send: SendDep) -> JSONResponse:
    """Link to another ticket (the inverse link is recorded on the other ticket)."""
    return send(body.to_command(ticket_id=ticket_id))


@router.post("/{ticket_id}/merge", response_model=CommandPublic)
def merge(ticket_id: UUID, body: MergeRequest, send: SendDep) -> JSONResponse:
    """Merge into another open ticket; this one closes with a pointer."""
    return send(body.to_command(ticket_id=ticket_id))


@router.post("/{ticket_id}/satisfaction", response_model=CommandPublic)
def satisfaction(ticket_id: UUID, body: SatisfactionCreate, send: SendDep) -> JSONResponse:
    """The requester rates a resolved or closed ticket, once (1-5)."""
    return send(body.to_command(ticket_id=ticket_id))


@router.post("/{ticket_id}/escalations", status_code=201, response_model=CommandPublic)
def escalate(ticket_id: UUID, body: EscalationCreate, send: SendDep) -> JSONResponse:
    """Raise an escalation; returns the escalation id."""
    return send(body.to_command(ticket_id=ticket_id))
