"""What every part of the service levels shares: the two targets, the built-in calendar
names, the at-risk share and the error an SLA command raises."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from engine.domain.base import RuleViolationError

SlaTarget = Literal["first_response", "resolution"]
TARGETS: tuple[SlaTarget, ...] = ("first_response", "resolution")

BUSINESS_HOURS = "business-hours"
ALWAYS_ON = "24x7"
DEFAULT_AT_RISK_SHARE = 0.75
Share = Annotated[float, Field(gt=0, lt=1)]


class SlaError(RuleViolationError):
    """An SLA configuration or clock command breaks a rule."""
