"""Commands on service levels: the SLA policy, business calendars, a queue's routing
policy and escalation rules, an agent's availability and schedule (all audited
configuration), and their decisions. Times are given as a person writes them (minutes,
local shifts) and turned into the domain's values here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from engine.domain import availability as av
from engine.domain import directory as dirs
from engine.domain import routing, sla
from engine.domain.assignment import RoutingPolicy
from engine.domain.base import CommandMeta, DomainEvent
from engine.domain.calendar import BusinessCalendar
from engine.domain.commands.base import AgentCommand, Command, QueueCommand
from engine.domain.escalation import EscalationKind, TargetType
from engine.domain.priority import Priority
from engine.domain.sla import SlaTarget
from engine.domain.values import Day, Instant, Name, Reason, WallTime

Minutes = Annotated[int, Field(ge=1, le=60 * 24 * 366)]


def _known_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ValueError, KeyError):
        raise ValueError(f"unknown IANA time zone {name!r}") from None
    return name


TimeZone = Annotated[Name, AfterValidator(_known_zone)]
WorkingHours = dict[Annotated[int, Field(ge=0, le=6)], list[tuple[WallTime, WallTime]]]


def _checked(build: Callable[[], object]) -> None:
    """Build a domain value from a command's fields, turning its refusal into one reason."""
    try:
        build()
    except ValidationError as error:
        raise ValueError("; ".join(str(e["msg"]) for e in error.errors())) from None


class Part(BaseModel):
    """A part of a command (a priority's targets, an escalation step): strict fields."""

    model_config = ConfigDict(extra="forbid")


# --- the SLA policy and calendars -------------------------------------------------------


class PriorityTargetsBody(Part):
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


class SetSlaPolicy(Command):
    targets: dict[Priority, PriorityTargetsBody] = Field(description="every priority, P1..P4")
    at_risk_share: float = Field(default=sla.DEFAULT_AT_RISK_SHARE, gt=0, lt=1)
    reason: Reason | None = None

    @model_validator(mode="after")
    def _every_priority(self) -> SetSlaPolicy:
        missing = [p.value for p in Priority if p not in self.targets]
        if missing:
            raise ValueError(f"targets for every priority are needed; missing {missing}")
        return self


class SetCalendar(Command):
    name: Name
    timezone: TimeZone = "UTC"
    working_hours: WorkingHours = Field(
        description='local shifts per weekday (0 = Monday), e.g. {"0": [["09:00", "17:00"]]}; '
        "an end of 00:00 means midnight"
    )
    holidays: list[Day] = Field(default_factory=list, max_length=1000)
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
    def _valid_calendar(self) -> SetCalendar:
        _checked(self.calendar)
        return self


@dataclass(frozen=True)
class PolicyState:
    """The policy in force and every calendar a new policy may name."""

    policy: sla.SlaPolicy
    calendars: Sequence[str]


def set_policy(c: SetSlaPolicy, s: PolicyState, meta: CommandMeta) -> list[DomainEvent]:
    """Record a new version of the SLA policy (running clocks keep their version)."""
    targets = {p: t.targets() for p, t in c.targets.items()}
    return sla.set_policy(s.policy, meta, targets, c.at_risk_share, s.calendars, c.reason)


def set_calendar(
    c: SetCalendar, s: sla.CalendarVersion | None, meta: CommandMeta
) -> list[DomainEvent]:
    """Define a calendar or record its next version."""
    return sla.set_calendar(s, meta, c.calendar(), c.reason)


# --- queues -------------------------------------------------------------------------------


class SetRoutingPolicy(QueueCommand):
    policy: RoutingPolicy
    reason: Reason | None = None


class EscalationStepBody(Part):
    kind: EscalationKind = "hierarchical"
    target_type: TargetType = "manager"
    target: Name | None = Field(default=None, description="None: the queue's lead")


class EscalationRuleBody(Part):
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


class SetEscalationRules(QueueCommand):
    lead: Name | None = Field(default=None, description="who leads the queue (principal id)")
    default: EscalationRuleBody = EscalationRuleBody()
    by_priority: dict[Priority, EscalationRuleBody] = Field(default_factory=dict)
    reason: Reason | None = None

    def queues_named(self) -> list[str]:
        """The queues its steps escalate to (each must exist)."""
        return [
            step.target
            for rule in [self.default, *self.by_priority.values()]
            for step in (rule.on_at_risk, rule.on_breach)
            if step is not None and step.target_type == "queue" and step.target
        ]


def set_routing_policy(
    c: SetRoutingPolicy, s: routing.QueueRouting, meta: CommandMeta
) -> list[DomainEvent]:
    return routing.set_policy(s, meta, c.policy, c.reason)


def set_escalation_rules(
    c: SetEscalationRules, s: sla.EscalationRules, meta: CommandMeta
) -> list[DomainEvent]:
    by_priority = {p: r.rule() for p, r in c.by_priority.items()}
    return sla.set_escalation_rules(s, meta, c.lead, c.default.rule(), by_priority, c.reason)


# --- agents ---------------------------------------------------------------------------------


class SetAvailability(AgentCommand):
    status: av.AvailabilityStatus
    reason: Reason | None = None


class OnCallBody(Part):
    start: Instant
    end: Instant
    note: Reason | None = None


class SetSchedule(AgentCommand):
    timezone: TimeZone = "UTC"
    working_hours: WorkingHours = Field(
        default_factory=dict, description="shifts per weekday, evenings and weekends included"
    )
    on_call: list[OnCallBody] = Field(default_factory=list, max_length=500)
    reason: Reason | None = None

    def schedule(self, agent_id: UUID | None = None) -> av.AgentSchedule:
        hours = (
            BusinessCalendar(
                name=f"agent:{agent_id or self.agent_id}",
                timezone=self.timezone,
                working_hours={day: tuple(s) for day, s in self.working_hours.items()},
            )
            if self.working_hours
            else None
        )
        windows = tuple(av.OnCallWindow(**w.model_dump()) for w in self.on_call)
        return av.AgentSchedule(hours=hours, on_call=windows)

    @model_validator(mode="after")
    def _valid_schedule(self) -> SetSchedule:
        _checked(lambda: self.schedule(UUID(int=0)))
        return self


@dataclass(frozen=True)
class AgentState:
    """An agent and their availability, folded from one read of the agent's stream."""

    agent: dirs.Agent
    availability: av.Availability


def set_availability(c: SetAvailability, s: AgentState, meta: CommandMeta) -> list[DomainEvent]:
    """An agent sets their own status; leads and admins anyone's."""
    return av.set_status(s.availability, s.agent, meta, c.status, c.reason)


def set_schedule(c: SetSchedule, s: AgentState, meta: CommandMeta) -> list[DomainEvent]:
    """An agent sets their own working hours and on-call windows; leads and admins anyone's."""
    return av.set_schedule(s.availability, s.agent, meta, c.schedule(), c.reason)
