"""Audit integrity (verify, checkpoints) and privacy (erasure)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from api.deps import DeskDep, PrincipalDep, RuntimeDep, SendNewDep
from api.responses import COMMAND_RESPONSES
from api.schemas import CommandPublic, ErasureRequest
from engine.app.permissions import authorize

router = APIRouter(tags=["integrity"], responses=COMMAND_RESPONSES)

SubjectId = Annotated[str, Path(min_length=1, max_length=100)]


@router.get("/tickets/{ticket_id}/verify")
def verify_ticket(ticket_id: UUID, desk: DeskDep, principal: PrincipalDep) -> dict[str, Any]:
    """Recompute the ticket's hash chains; report the first broken link."""
    return desk.queries.verify_ticket(principal, ticket_id)


@router.post("/checkpoints", status_code=201)
def checkpoint(runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    """Record a signed checkpoint (Merkle root of every stream's head) now."""
    authorize(principal, "manage_directory")
    return runtime.checkpoint()


@router.post("/subjects/{subject_id}/erase", response_model=CommandPublic)
def erase(subject_id: SubjectId, body: ErasureRequest, send: SendNewDep) -> JSONResponse:
    """Erase a data subject: destroy their key and record who, when and why."""
    return send(body.to_command(subject_id=subject_id))
