"""Escalation commands and query."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from api.deps import DeskDep, PrincipalDep, SendDep
from api.responses import COMMAND_RESPONSES
from api.schemas import (
    CommandPublic,
    NoteOptional,
    NoteRequired,
    ReasonRequired,
    VendorReferenceCreate,
)
from engine.app.results import EscalationDetails
from engine.domain.commands import escalations as c

router = APIRouter(prefix="/escalations", tags=["escalations"], responses=COMMAND_RESPONSES)


@router.get("/{escalation_id}", response_model=EscalationDetails)
def get_escalation(
    escalation_id: UUID, desk: DeskDep, principal: PrincipalDep, response: Response
) -> EscalationDetails:
    """One escalation's current state (ETag = its version)."""
    details = desk.queries.escalation(principal, escalation_id)
    response.headers["ETag"] = f'"{details.version}"'
    return details


@router.post("/{escalation_id}/acknowledge", response_model=CommandPublic)
def acknowledge(
    escalation_id: UUID, send: SendDep, body: NoteOptional | None = None
) -> JSONResponse:
    """The target acknowledges the escalation."""
    return send((body or NoteOptional()).to_command(escalation_id=escalation_id))


@router.post("/{escalation_id}/vendor-reference", response_model=CommandPublic)
def vendor_reference(
    escalation_id: UUID, body: VendorReferenceCreate, send: SendDep
) -> JSONResponse:
    """Record the external vendor's case reference."""
    return send(body.to_command(escalation_id=escalation_id))


@router.post("/{escalation_id}/resolve", response_model=CommandPublic)
def resolve(escalation_id: UUID, body: NoteRequired, send: SendDep) -> JSONResponse:
    """Resolve the escalation with an outcome note."""
    return send(body.to_command(escalation_id=escalation_id))


@router.post("/{escalation_id}/withdraw", response_model=CommandPublic)
def withdraw(escalation_id: UUID, body: ReasonRequired, send: SendDep) -> JSONResponse:
    """Withdraw the escalation, with a reason."""
    return send(body.to_command(c.WithdrawEscalation, escalation_id=escalation_id))
