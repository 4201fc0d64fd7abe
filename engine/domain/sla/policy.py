"""The SLA policy aggregate: targets per priority and the at-risk share, audited and
versioned (version 0 is the built-in ``DEFAULT_POLICY``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.domain.base import CommandMeta, DomainEvent, EventFactory, Kind, derived_id
from engine.domain.priority import Priority
from engine.domain.sla.common import (
    ALWAYS_ON,
    BUSINESS_HOURS,
    DEFAULT_AT_RISK_SHARE,
    Share,
    SlaError,
)

POLICY_ID = derived_id("sla-policy", "default")


class PriorityTargets(BaseModel):
    """One priority's targets, in business time on the named calendar."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    first_response: timedelta = Field(gt=timedelta(0))
    resolution: timedelta = Field(gt=timedelta(0))
    calendar: str = Field(default=BUSINESS_HOURS, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _response_before_resolution(self) -> PriorityTargets:
        if self.first_response > self.resolution:
            raise ValueError("the first-response target cannot exceed the resolution target")
        return self


def _every_priority(targets: dict[Priority, PriorityTargets]) -> dict[Priority, PriorityTargets]:
    missing = [p.value for p in Priority if p not in targets]
    if missing:
        raise ValueError(f"the policy needs targets for every priority; missing {missing}")
    return targets


class SlaPolicySet(DomainEvent):
    """The SLA policy changed: targets per priority and the at-risk share."""

    type_name = "SlaPolicySet"
    aggregate_type = "SlaPolicy"
    targets: dict[Priority, PriorityTargets]
    at_risk_share: Share
    reason: str | None = None


class SlaPolicy(BaseModel):
    """The policy in force; ``version`` 0 is the built-in default."""

    model_config = ConfigDict(frozen=True)

    version: int = 0
    targets: dict[Priority, PriorityTargets]
    at_risk_share: Share = DEFAULT_AT_RISK_SHARE


def _targets(first: int, resolution: int, calendar: str = BUSINESS_HOURS) -> PriorityTargets:
    return PriorityTargets(
        first_response=timedelta(minutes=first),
        resolution=timedelta(minutes=resolution),
        calendar=calendar,
    )


# P1 runs around the clock: a critical outage reported on Friday evening cannot wait for
# Monday. The others run in business hours. Every value is configurable (SlaPolicySet).
DEFAULT_POLICY = SlaPolicy(
    targets={
        Priority.P1: _targets(15, 4 * 60, ALWAYS_ON),
        Priority.P2: _targets(60, 8 * 60),
        Priority.P3: _targets(4 * 60, 24 * 60),
        Priority.P4: _targets(8 * 60, 40 * 60),
    }
)


def evolve_policy(state: SlaPolicy | None, event: DomainEvent) -> SlaPolicy:
    current = state or DEFAULT_POLICY
    if isinstance(event, SlaPolicySet):
        return SlaPolicy(
            version=event.originator_version,
            targets=event.targets,
            at_risk_share=event.at_risk_share,
        )
    return current.model_copy(update={"version": event.originator_version})


def set_policy(
    current: SlaPolicy,
    meta: CommandMeta,
    targets: dict[Priority, PriorityTargets],
    at_risk_share: float,
    known_calendars: Iterable[str],
    reason: str | None,
) -> list[DomainEvent]:
    try:
        _every_priority(targets)
    except ValueError as error:
        raise SlaError(str(error)) from None
    unknown = sorted({t.calendar for t in targets.values()} - set(known_calendars))
    if unknown:
        raise SlaError(f"unknown calendars {unknown}: define them first (POST /sla/calendars)")
    if targets == current.targets and at_risk_share == current.at_risk_share:
        raise SlaError("the policy is unchanged")
    return [
        EventFactory(meta).make(
            SlaPolicySet,
            POLICY_ID,
            current.version + 1,
            targets=targets,
            at_risk_share=at_risk_share,
            reason=reason,
        )
    ]


KIND = Kind("SlaPolicy", evolve_policy, lambda key: DEFAULT_POLICY)
"""The desk's one policy; the built-in one is in force until a policy is set."""
