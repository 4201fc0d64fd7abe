"""Service levels: SLA policy and calendars, queue routing and escalation rules, agent
availability (admin configuration, all recorded as events), and a ticket's SLA."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.deps import DeskDep, PrincipalDep, SendNewDep
from api.responses import COMMAND_RESPONSES
from api.schemas import (
    AvailabilityUpdate,
    CalendarCreate,
    CommandPublic,
    EscalationRulesUpdate,
    RoutingPolicyUpdate,
    ScheduleUpdate,
    SlaPolicyUpdate,
)
from engine.domain import availability as av
from engine.domain import sla
from engine.domain.assignment import RoutingPolicy
from engine.domain.calendar import BusinessCalendar
from engine.domain.commands.service_levels import PriorityTargetsBody
from engine.domain.priority import Priority
from engine.domain.sla import SlaView
from engine.domain.values import QueueName

router = APIRouter(tags=["service levels"], responses=COMMAND_RESPONSES)


# --- answers ---------------------------------------------------------------------------------


class SlaPolicyPublic(BaseModel):
    version: int = Field(description="0 is the built-in default")
    targets: dict[Priority, PriorityTargetsBody]
    at_risk_share: float


class CalendarPublic(BaseModel):
    version: int = Field(description="0 is the built-in definition")
    calendar: BusinessCalendar


class RoutingPolicyPublic(BaseModel):
    queue: str
    policy: RoutingPolicy
    version: int = Field(description="0 is the default, manual")


class AvailabilityPublic(BaseModel):
    agent_id: UUID
    name: str
    status: av.AvailabilityStatus
    status_reason: str | None
    schedule: av.AgentSchedule | None
    available_now: bool
    why: str
    version: int


def _targets_public(targets: sla.PriorityTargets) -> PriorityTargetsBody:
    return PriorityTargetsBody(
        first_response_minutes=int(targets.first_response.total_seconds() // 60),
        resolution_minutes=int(targets.resolution.total_seconds() // 60),
        calendar=targets.calendar,
    )


# --- SLA policy and calendars ---------------------------------------------------------------


@router.get("/sla/policy", response_model=SlaPolicyPublic)
def get_policy(
    desk: DeskDep,
    principal: PrincipalDep,
    version: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
) -> SlaPolicyPublic:
    """The SLA policy in force, or a past version of it."""
    policy = desk.queries.sla_config(principal).policy(version=version)
    return SlaPolicyPublic(
        version=policy.version,
        targets={p: _targets_public(t) for p, t in policy.targets.items()},
        at_risk_share=policy.at_risk_share,
    )


@router.post("/sla/policy", response_model=CommandPublic)
def set_policy(body: SlaPolicyUpdate, send: SendNewDep) -> JSONResponse:
    """Record the next version of the SLA policy (running clocks keep theirs)."""
    return send(body.to_command())


@router.get("/sla/calendars", response_model=list[str])
def list_calendars(desk: DeskDep, principal: PrincipalDep) -> list[str]:
    """The names of every calendar, built-in and defined."""
    return desk.queries.sla_config(principal).calendar_names()


@router.get("/sla/calendars/{name}", response_model=CalendarPublic)
def get_calendar(
    name: Annotated[str, Path(min_length=1, max_length=100)],
    desk: DeskDep,
    principal: PrincipalDep,
    version: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
) -> CalendarPublic:
    """A calendar as it is now, or a past version of it."""
    found = desk.queries.sla_config(principal).calendar(name, version=version)
    return CalendarPublic(version=found.version, calendar=found.calendar)


@router.post("/sla/calendars", response_model=CommandPublic)
def set_calendar(body: CalendarCreate, send: SendNewDep) -> JSONResponse:
    """Define a calendar, or record the next version of one (running clocks keep theirs)."""
    return send(body.to_command())


# --- queues ------------------------------------------------------------------------------------


@router.get("/queues/{queue}/routing-policy", response_model=RoutingPolicyPublic)
def get_routing_policy(
    queue: QueueName, desk: DeskDep, principal: PrincipalDep
) -> RoutingPolicyPublic:
    """How the queue's tickets are routed to its agents."""
    found = desk.queries.queue_config(principal, queue).routing_policy(queue)
    return RoutingPolicyPublic(queue=queue, policy=found.policy, version=found.version)


@router.post("/queues/{queue}/routing-policy", response_model=CommandPublic)
def set_routing_policy(
    queue: QueueName, body: RoutingPolicyUpdate, send: SendNewDep
) -> JSONResponse:
    """Route the queue's new tickets manually, round robin, or to the least loaded agent."""
    return send(body.to_command(queue=queue))


@router.get("/queues/{queue}/escalation-rules", response_model=sla.EscalationRules)
def get_escalation_rules(
    queue: QueueName, desk: DeskDep, principal: PrincipalDep
) -> sla.EscalationRules:
    """What the queue escalates automatically when a ticket's SLA is at risk or breached."""
    return desk.queries.queue_config(principal, queue).escalation_rules(queue)


@router.post("/queues/{queue}/escalation-rules", response_model=CommandPublic)
def set_escalation_rules(
    queue: QueueName, body: EscalationRulesUpdate, send: SendNewDep
) -> JSONResponse:
    """Set the queue's automatic escalation rules (a default and per-priority overrides)."""
    return send(body.to_command(queue=queue))


# --- agents ------------------------------------------------------------------------------------


@router.get("/agents/{agent_id}/availability", response_model=AvailabilityPublic)
def get_availability(agent_id: UUID, desk: DeskDep, principal: PrincipalDep) -> AvailabilityPublic:
    """The agent's status and schedule, and whether they take routed tickets now."""
    agent, availability, available, why = desk.queries.availability(principal, agent_id)
    return AvailabilityPublic(
        agent_id=agent.id,
        name=agent.name,
        status=availability.status,
        status_reason=availability.status_reason,
        schedule=availability.schedule,
        available_now=available,
        why=why,
        version=agent.version,
    )


@router.post("/agents/{agent_id}/availability", response_model=CommandPublic)
def set_availability(agent_id: UUID, body: AvailabilityUpdate, send: SendNewDep) -> JSONResponse:
    """Set an agent's status (agents their own; leads and admins anyone's)."""
    return send(body.to_command(agent_id=agent_id))


@router.post("/agents/{agent_id}/schedule", response_model=CommandPublic)
def set_schedule(agent_id: UUID, body: ScheduleUpdate, send: SendNewDep) -> JSONResponse:
    """Set an agent's working hours and on-call windows (evenings and weekends included)."""
    return send(body.to_command(agent_id=agent_id))


# --- tickets -----------------------------------------------------------------------------------


@router.get("/tickets/{ticket_id}/sla", response_model=SlaView)
def get_ticket_sla(ticket_id: UUID, desk: DeskDep, principal: PrincipalDep) -> SlaView:
    """The ticket's SLA targets, due times, elapsed and remaining business time, and state."""
    return desk.queries.ticket_sla(principal, ticket_id)
