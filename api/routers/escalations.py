"""Escalation commands and query."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from api.deps import DeskDep, IdempotencyDep, IfMatch, PrincipalDep
from api.responses import COMMAND_RESPONSES, command_response
from api.schemas import (
    CommandPublic,
    NoteOptional,
    NoteRequired,
    ReasonRequired,
    VendorReferenceCreate,
)
from engine.app.results import EscalationDetails

router = APIRouter(prefix="/escalations", tags=["escalations"], responses=COMMAND_RESPONSES)


@router.get("/{escalation_id}", response_model=EscalationDetails)
def get_escalation(
    escalation_id: UUID, desk: DeskDep, principal: PrincipalDep, response: Response
) -> EscalationDetails:
    """One escalation's current state (ETag = its version)."""
    details = desk.escalation_details(principal, escalation_id)
    response.headers["ETag"] = f'"{details.version}"'
    return details


@router.post("/{escalation_id}/acknowledge", response_model=CommandPublic)
def acknowledge(
    escalation_id: UUID,
    desk: DeskDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
    body: NoteOptional | None = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    """The target acknowledges the escalation."""
    return command_response(
        desk.acknowledge_escalation(
            principal, escalation_id, body.note if body else None, if_match, idem
        )
    )


@router.post("/{escalation_id}/vendor-reference", response_model=CommandPublic)
def vendor_reference(
    escalation_id: UUID,
    body: VendorReferenceCreate,
    desk: DeskDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Record the external vendor's case reference."""
    return command_response(
        desk.record_vendor_reference(
            principal, escalation_id, body.vendor, body.reference, if_match, idem
        )
    )


@router.post("/{escalation_id}/resolve", response_model=CommandPublic)
def resolve(
    escalation_id: UUID,
    body: NoteRequired,
    desk: DeskDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Resolve the escalation with an outcome note."""
    return command_response(
        desk.resolve_escalation(principal, escalation_id, body.note, if_match, idem)
    )


@router.post("/{escalation_id}/withdraw", response_model=CommandPublic)
def withdraw(
    escalation_id: UUID,
    body: ReasonRequired,
    desk: DeskDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Withdraw the escalation, with a reason."""
    return command_response(
        desk.withdraw_escalation(principal, escalation_id, body.reason, if_match, idem)
    )
