"""Audit integrity (verify, checkpoints) and privacy (erasure)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from api.deps import DeskDep, IdempotencyDep, PrincipalDep, RuntimeDep
from api.responses import COMMAND_RESPONSES, command_response
from api.schemas import CommandPublic, ErasureRequest
from engine.app.permissions import authorize

router = APIRouter(tags=["integrity"], responses=COMMAND_RESPONSES)

SubjectId = Annotated[str, Path(min_length=1, max_length=100)]


@router.get("/tickets/{ticket_id}/verify")
def verify_ticket(ticket_id: UUID, desk: DeskDep, principal: PrincipalDep) -> dict[str, Any]:
    """Recompute the ticket's hash chains; report the first broken link."""
    return desk.verify_ticket(principal, ticket_id)


@router.post("/checkpoints", status_code=201)
def checkpoint(runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    """Record a signed checkpoint (Merkle root of every stream's head) now."""
    authorize(principal, "manage_directory")
    return runtime.checkpoint()


@router.post("/subjects/{subject_id}/erase", response_model=CommandPublic)
def erase(
    subject_id: SubjectId,
    body: ErasureRequest,
    desk: DeskDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
) -> JSONResponse:
    """Erase a data subject: destroy their key and record who, when and why."""
    return command_response(desk.erase_subject(principal, subject_id, body.legal_basis, idem))
