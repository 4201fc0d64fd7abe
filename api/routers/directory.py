"""Admin: queues, agents and API keys (all recorded as events)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import DeskDep, PrincipalDep, SendNewDep
from api.responses import COMMAND_RESPONSES
from api.schemas import (
    AgentCreate,
    AgentPublic,
    AgentUpdate,
    ApiKeyCreate,
    ApiKeyRevoke,
    CommandPublic,
    QueueCreate,
)

router = APIRouter(tags=["directory"], responses=COMMAND_RESPONSES)


@router.post("/queues", status_code=201, response_model=CommandPublic)
def create_queue(body: QueueCreate, send: SendNewDep) -> JSONResponse:
    """Create a queue (team)."""
    return send(body.to_command())


@router.post("/agents", status_code=201, response_model=CommandPublic)
def register_agent(body: AgentCreate, send: SendNewDep) -> JSONResponse:
    """Register an agent or lead; the response carries their API key, shown once."""
    return send(body.to_command())


@router.post("/agents/{agent_id}", response_model=CommandPublic)
def update_agent(agent_id: UUID, body: AgentUpdate, send: SendNewDep) -> JSONResponse:
    """Change an agent's queues, capacity or active flag."""
    return send(body.to_command(agent_id=agent_id))


@router.get("/agents", response_model=list[AgentPublic])
def list_agents(desk: DeskDep, principal: PrincipalDep) -> list[AgentPublic]:
    """Every registered agent with queues, capacity and current load."""
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
        for a in desk.queries.agents(principal)
    ]


@router.post("/api-keys", status_code=201, response_model=CommandPublic)
def issue_key(body: ApiKeyCreate, send: SendNewDep) -> JSONResponse:
    """Issue an API key for a requester, auditor or admin; the key is shown once."""
    return send(body.to_command())


@router.post("/api-keys/{credential_id}/revoke", response_model=CommandPublic)
def revoke_key(credential_id: UUID, body: ApiKeyRevoke, send: SendNewDep) -> JSONResponse:
    """Revoke an API key by its id (the aggregate_id its issue returned); recorded."""
    return send(body.to_command(credential_id=credential_id))
