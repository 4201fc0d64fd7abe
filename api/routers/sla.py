"""Service levels: SLA policy and calendars, queue routing and escalation rules, agent
availability (admin configuration, all recorded as events), and a ticket's SLA."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, time, timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field, ValidationError, model_validator

from api.deps import IdempotencyDep, PrincipalDep, RuntimeDep
from api.responses import COMMAND_RESPONSES, command_response
from api.schemas import Body, CommandPublic, Name, QueueName, Reason
from engine.app.sla_service import SlaService
from engine.domain import availability as av
from engine.domain import sla
from engine.domain.assignment import RoutingPolicy
from engine.domain.calendar import BusinessCalendar
from engine.domain.escalation import EscalationKind, TargetType
from engine.domain.priority import Priority
from engine.domain.sla import SlaTarget, SlaView

router = APIRouter(tags=["service levels"], responses=COMMAND_RESPONSES)
Minutes = Annotated[int, Field(ge=1, le=60 * 24 * 366)]
WorkingHours = dict[Annotated[int, Field(ge=0, le=6)], list[tuple[time, time]]]


def _checked(build: Callable[[], object]) -> None:
    """Build a domain value from a body, turning its refusal into one readable reason."""
    try:
        build()
    except ValidationError as error:
        raise ValueError("; ".join(str(e["msg"]) for e in error.errors())) from None


def get_sla(runtime: RuntimeDep) -> SlaService:
    return SlaService(runtime.app, runtime.clock)


SlaDep = Annotated[SlaService, Depends(get_sla)]


# --- bodies -------------------------------------------------------------------------------


class PriorityTargetsBody(Body):
    first_response_minutes: Minutes
    resolution_minutes: Minutes
    calendar: Name = sla.BUSINESS_HOURS

    def targets(self) -> sla.PriorityTargets:
        return sla.PriorityTargets(
            first_response=timedelta(minutes=self.first_response_minutes),
            resolution=timedelta(minutes=self.resolution_minutes),
            calendar=self.calendar,
        )

    @model_validator(mode="after")
    def _coherent(self) -> PriorityTargetsBody:
        _checked(self.targets)
        return self


class SlaPolicyUpdate(Body):
    targets: dict[Priority, PriorityTargetsBody] = Field(description="every priority, P1..P4")
    at_risk_share: float = Field(default=sla.DEFAULT_AT_RISK_SHARE, gt=0, lt=1)
    reason: Reason | None = None

    @model_validator(mode="after")
    def _every_priority(self) -> SlaPolicyUpdate:
        missing = [p.value for p in Priority if p not in self.targets]
        if missing:
            raise ValueError(f"targets for every priority are needed; missing {missing}")
        return self


class SlaPolicyPublic(BaseModel):
    version: int = Field(description="0 is the built-in default")
    targets: dict[Priority, PriorityTargetsBody]
    at_risk_share: float


class CalendarCreate(Body):
    name: Name
    timezone: Name = "UTC"
    working_hours: WorkingHours = Field(
        description='local shifts per weekday (0 = Monday), e.g. {"0": [["09:00", "17:00"]]}; '
        "an end of 00:00 means midnight"
    )
    holidays: list[date] = Field(default_factory=list, max_length=1000)
    holiday_country: Annotated[str, Field(min_length=2, max_length=3)] | None = None
    holiday_subdivision: Annotated[str, Field(min_length=1, max_length=10)] | None = None
    reason: Reason | None = None

    def calendar(self) -> BusinessCalendar:
        return BusinessCalendar(
            name=self.name,
            timezone=self.timezone,
            working_hours={day: tuple(shifts) for day, shifts in self.working_hours.items()},
            holidays=frozenset(self.holidays),
            holiday_country=self.holiday_country,
            holiday_subdivision=self.holiday_subdivision,
        )

    @model_validator(mode="after")
    def _valid_calendar(self) -> CalendarCreate:
        _checked(self.calendar)
        return self


class CalendarPublic(BaseModel):
    version: int = Field(description="0 is the built-in definition")
    calendar: BusinessCalendar


class RoutingPolicyUpdate(Body):
    policy: RoutingPolicy
    reason: Reason | None = None


class RoutingPolicyPublic(BaseModel):
    queue: str
    policy: RoutingPolicy
    version: int = Field(description="0 is the default, manual")


class EscalationStepBody(Body):
    kind: EscalationKind = "hierarchical"
    target_type: TargetType = "manager"
    target: Name | None = Field(default=None, description="None: the queue's lead")


class EscalationRuleBody(Body):
    on_at_risk: EscalationStepBody | None = EscalationStepBody()
    on_breach: EscalationStepBody | None = EscalationStepBody(target="service-desk-manager")
    targets: list[SlaTarget] = Field(default_factory=lambda: list(sla.TARGETS), min_length=1)

    def rule(self) -> sla.EscalationRule:
        return sla.EscalationRule.model_validate(
            {**self.model_dump(), "targets": tuple(dict.fromkeys(self.targets))}
        )

    @model_validator(mode="after")
    def _coherent(self) -> EscalationRuleBody:
        _checked(self.rule)
        return self


class EscalationRulesUpdate(Body):
    lead: Name | None = Field(default=None, description="who leads the queue (principal id)")
    default: EscalationRuleBody = EscalationRuleBody()
    by_priority: dict[Priority, EscalationRuleBody] = Field(default_factory=dict)
    reason: Reason | None = None


class AvailabilityUpdate(Body):
    status: av.AvailabilityStatus
    reason: Reason | None = None


class OnCallBody(Body):
    start: AwareDatetime
    end: AwareDatetime
    note: Reason | None = None


class ScheduleUpdate(Body):
    timezone: Name = "UTC"
    working_hours: WorkingHours = Field(
        default_factory=dict, description="shifts per weekday, evenings and weekends included"
    )
    on_call: list[OnCallBody] = Field(default_factory=list, max_length=500)
    reason: Reason | None = None

    def schedule(self, agent_id: UUID) -> av.AgentSchedule:
        hours = (
            BusinessCalendar(
                name=f"agent:{agent_id}",
                timezone=self.timezone,
                working_hours={day: tuple(s) for day, s in self.working_hours.items()},
            )
            if self.working_hours
            else None
        )
        windows = tuple(av.OnCallWindow(**w.model_dump()) for w in self.on_call)
        return av.AgentSchedule(hours=hours, on_call=windows)

    @model_validator(mode="after")
    def _valid_schedule(self) -> ScheduleUpdate:
        _checked(lambda: self.schedule(UUID(int=0)))
        return self


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
    service: SlaDep,
    principal: PrincipalDep,
    version: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
) -> SlaPolicyPublic:
    """The SLA policy in force, or a past version of it."""
    policy = service.read_config(principal).policy(version=version)
    return SlaPolicyPublic(
        version=policy.version,
        targets={p: _targets_public(t) for p, t in policy.targets.items()},
        at_risk_share=policy.at_risk_share,
    )


@router.post("/sla/policy", response_model=CommandPublic)
def set_policy(
    body: SlaPolicyUpdate, service: SlaDep, principal: PrincipalDep, idem: IdempotencyDep
) -> JSONResponse:
    """Record the next version of the SLA policy (running clocks keep theirs)."""
    targets = {p: t.targets() for p, t in body.targets.items()}
    return command_response(
        service.set_policy(principal, targets, body.at_risk_share, body.reason, idem)
    )


@router.get("/sla/calendars", response_model=list[str])
def list_calendars(service: SlaDep, principal: PrincipalDep) -> list[str]:
    """The names of every calendar, built-in and defined."""
    return service.read_config(principal).calendar_names()


@router.get("/sla/calendars/{name}", response_model=CalendarPublic)
def get_calendar(
    name: str,
    service: SlaDep,
    principal: PrincipalDep,
    version: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
) -> CalendarPublic:
    """A calendar as it is now, or a past version of it."""
    found = service.read_config(principal).calendar(name, version=version)
    return CalendarPublic(version=found.version, calendar=found.calendar)


@router.post("/sla/calendars", response_model=CommandPublic)
def set_calendar(
    body: CalendarCreate, service: SlaDep, principal: PrincipalDep, idem: IdempotencyDep
) -> JSONResponse:
    """Define a calendar, or record the next version of one (running clocks keep theirs)."""
    return command_response(service.set_calendar(principal, body.calendar(), body.reason, idem))


# --- queues ------------------------------------------------------------------------------------


@router.get("/queues/{queue}/routing-policy", response_model=RoutingPolicyPublic)
def get_routing_policy(
    queue: QueueName, service: SlaDep, principal: PrincipalDep
) -> RoutingPolicyPublic:
    """How the queue's tickets are routed to its agents."""
    found = service.read_config(principal).routing_policy(queue)
    return RoutingPolicyPublic(queue=queue, policy=found.policy, version=found.version)


@router.post("/queues/{queue}/routing-policy", response_model=CommandPublic)
def set_routing_policy(
    queue: QueueName,
    body: RoutingPolicyUpdate,
    service: SlaDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
) -> JSONResponse:
    """Route the queue's new tickets manually, round robin, or to the least loaded agent."""
    return command_response(
        service.set_routing_policy(principal, queue, body.policy, body.reason, idem)
    )


@router.get("/queues/{queue}/escalation-rules", response_model=sla.EscalationRules)
def get_escalation_rules(
    queue: QueueName, service: SlaDep, principal: PrincipalDep
) -> sla.EscalationRules:
    """What the queue escalates automatically when a ticket's SLA is at risk or breached."""
    return service.read_config(principal).escalation_rules(queue)


@router.post("/queues/{queue}/escalation-rules", response_model=CommandPublic)
def set_escalation_rules(
    queue: QueueName,
    body: EscalationRulesUpdate,
    service: SlaDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
) -> JSONResponse:
    """Set the queue's automatic escalation rules (a default and per-priority overrides)."""
    return command_response(
        service.set_escalation_rules(
            principal,
            queue,
            body.lead,
            body.default.rule(),
            {p: r.rule() for p, r in body.by_priority.items()},
            body.reason,
            idem,
        )
    )


# --- agents ------------------------------------------------------------------------------------


@router.get("/agents/{agent_id}/availability", response_model=AvailabilityPublic)
def get_availability(
    agent_id: UUID, service: SlaDep, principal: PrincipalDep
) -> AvailabilityPublic:
    """The agent's status and schedule, and whether they take routed tickets now."""
    agent, availability, available, why = service.availability(principal, agent_id)
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
def set_availability(
    agent_id: UUID,
    body: AvailabilityUpdate,
    service: SlaDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
) -> JSONResponse:
    """Set an agent's status (agents their own; leads and admins anyone's)."""
    return command_response(
        service.set_availability(principal, agent_id, body.status, body.reason, idem)
    )


@router.post("/agents/{agent_id}/schedule", response_model=CommandPublic)
def set_schedule(
    agent_id: UUID,
    body: ScheduleUpdate,
    service: SlaDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
) -> JSONResponse:
    """Set an agent's working hours and on-call windows (evenings and weekends included)."""
    return command_response(
        service.set_schedule(principal, agent_id, body.schedule(agent_id), body.reason, idem)
    )


# --- tickets -----------------------------------------------------------------------------------


@router.get("/tickets/{ticket_id}/sla", response_model=SlaView)
def get_ticket_sla(ticket_id: UUID, service: SlaDep, principal: PrincipalDep) -> SlaView:
    """The ticket's SLA targets, due times, elapsed and remaining business time, and state."""
    return service.ticket_sla(principal, ticket_id)
