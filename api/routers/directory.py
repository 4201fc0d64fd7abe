"""Admin: queues, agents and API keys (all recorded as events)."""

from __future__ import annotations

from uuid import UUID, uuid4

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import DeskDep, IdempotencyDep, PrincipalDep, RuntimeDep
from api.responses import COMMAND_RESPONSES, command_response
from api.schemas import (
    AgentCreate,
    AgentPublic,
    AgentUpdate,
    ApiKeyCreate,
    ApiKeyRevoke,
    CommandPublic,
    QueueCreate,
)
from engine.domain.directory import Role

router = APIRouter(tags=["directory"], responses=COMMAND_RESPONSES)


@router.post("/queues", status_code=201, response_model=CommandPublic)
def create_queue(
    body: QueueCreate, desk: DeskDep, principal: PrincipalDep, idem: IdempotencyDep
) -> JSONResponse:
    """Create a queue (team)."""
    return command_response(desk.create_queue(principal, body.name, body.description, idem))


@router.post("/agents", status_code=201, response_model=CommandPublic)
def register_agent(
    body: AgentCreate, desk: DeskDep, principal: PrincipalDep, idem: IdempotencyDep
) -> JSONResponse:
    """Register an agent or lead; the response carries their API key, shown once."""
    return command_response(
        desk.register_agent(
            principal,
            uuid4(),
            body.name,
            body.email,
            Role(body.role),
            body.queues,
            body.capacity,
            idem,
        )
    )


@router.post("/agents/{agent_id}", response_model=CommandPublic)
def update_agent(
    agent_id: UUID, body: AgentUpdate, desk: DeskDep, principal: PrincipalDep, idem: IdempotencyDep
) -> JSONResponse:
    """Change an agent's queues, capacity or active flag."""
    return command_response(
        desk.update_agent(
            principal, agent_id, body.queues, body.capacity, body.active, body.reason, idem
        )
    )


@router.get("/agents", response_model=list[AgentPublic])
def list_agents(runtime: RuntimeDep, desk: DeskDep, principal: PrincipalDep) -> list[AgentPublic]:
    """Every registered agent with queues, capacity and current load."""
    ids = runtime.app.agent_ids()
    return [
        AgentPublic(
            id=a.id,
            name=a.name,
            email=a.email,
            role=a.role,
            queues=sorted(a.queues),
            capacity=a.capacity,
            active=a.active,
            load=a.load,
            version=a.version,
        )
        for a in desk.agents(principal, ids)
    ]


@router.post("/api-keys", status_code=201, response_model=CommandPublic)
def issue_key(
    body: ApiKeyCreate, desk: DeskDep, principal: PrincipalDep, idem: IdempotencyDep
) -> JSONResponse:
    """Issue an API key for a requester, auditor or admin; the key is shown once."""
    return command_response(
        desk.issue_key(principal, body.name, Role(body.role), body.principal_id, idem)
    )


@router.post("/api-keys/{credential_id}/revoke", response_model=CommandPublic)
def revoke_key(
    credential_id: UUID,
    body: ApiKeyRevoke,
    desk: DeskDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
) -> JSONResponse:
    """Revoke an API key by its id (the aggregate_id its issue returned); recorded."""
    return command_response(desk.revoke_key(principal, credential_id, body.reason, idem))
