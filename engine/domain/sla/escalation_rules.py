"""A queue's automatic escalation rules (an aggregate per queue, version 0 built in) and
``plan_escalation``: the escalation a rule asks for when a target falls at risk or is
breached."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.domain.base import CommandMeta, DomainEvent, EventFactory, Kind, derived_id
from engine.domain.escalation import EscalationKind, TargetType
from engine.domain.priority import Priority
from engine.domain.sla.clock import SlaAtRisk, SlaBreached
from engine.domain.sla.common import TARGETS, SlaError, SlaTarget


def escalation_rules_id(queue: str) -> UUID:
    return derived_id("escalation-rules", queue)


class EscalationStep(BaseModel):
    """Where an automatic escalation goes; a ``target`` of None means the queue's lead."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: EscalationKind = "hierarchical"
    target_type: TargetType = "manager"
    target: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _coherent(self) -> EscalationStep:
        if self.kind == "hierarchical" and self.target_type != "manager":
            raise ValueError("a hierarchical escalation targets a manager (target_type)")
        if self.kind == "functional" and self.target_type == "manager":
            raise ValueError("a functional escalation targets a queue, department or vendor")
        if self.kind == "functional" and not self.target:
            raise ValueError("a functional escalation names its target")
        return self


class EscalationRule(BaseModel):
    """What happens when a target of a ticket falls at risk, or is breached."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    on_at_risk: EscalationStep | None = EscalationStep()
    on_breach: EscalationStep | None = EscalationStep(target="service-desk-manager")
    targets: tuple[SlaTarget, ...] = TARGETS


class EscalationRules(BaseModel):
    """A queue's rules: a default and per-priority overrides; ``version`` 0 is built in."""

    model_config = ConfigDict(frozen=True)

    queue: str
    version: int = 0
    lead: str | None = None
    default: EscalationRule = EscalationRule()
    by_priority: dict[Priority, EscalationRule] = {}

    def rule(self, priority: Priority) -> EscalationRule:
        return self.by_priority.get(priority, self.default)


class EscalationRulesSet(DomainEvent):
    """A queue's automatic escalation rules changed."""

    type_name = "EscalationRulesSet"
    aggregate_type = "EscalationRules"
    queue: str
    lead: str | None = None
    default: EscalationRule
    by_priority: dict[Priority, EscalationRule] = {}
    reason: str | None = None


def evolve_escalation_rules(state: EscalationRules, event: DomainEvent) -> EscalationRules:
    if isinstance(event, EscalationRulesSet):
        return EscalationRules(
            queue=event.queue,
            version=event.originator_version,
            lead=event.lead,
            default=event.default,
            by_priority=event.by_priority,
        )
    return state.model_copy(update={"version": event.originator_version})


def set_escalation_rules(
    current: EscalationRules,
    meta: CommandMeta,
    lead: str | None,
    default: EscalationRule,
    by_priority: dict[Priority, EscalationRule],
    reason: str | None,
) -> list[DomainEvent]:
    if (lead, default, by_priority) == (current.lead, current.default, current.by_priority):
        raise SlaError(f"the escalation rules of queue {current.queue!r} are unchanged")
    return [
        EventFactory(meta).make(
            EscalationRulesSet,
            escalation_rules_id(current.queue),
            current.version + 1,
            queue=current.queue,
            lead=lead,
            default=default,
            by_priority=by_priority,
            reason=reason,
        )
    ]


class EscalationPlan(BaseModel):
    """An automatic escalation to raise for one SLA event."""

    model_config = ConfigDict(frozen=True)

    kind: EscalationKind
    target_type: TargetType
    target: str
    reason: str


def plan_escalation(
    event: SlaAtRisk | SlaBreached, rules: EscalationRules, queue_lead: str | None
) -> EscalationPlan | None:
    """The escalation a rule asks for on an at-risk or breach event, if any."""
    priority = event.priority
    rule = rules.rule(priority)
    if event.target not in rule.targets:
        return None
    step = rule.on_at_risk if isinstance(event, SlaAtRisk) else rule.on_breach
    if step is None:
        return None
    target = step.target or rules.lead or queue_lead or f"queue-lead:{rules.queue or 'none'}"
    what = "at risk" if isinstance(event, SlaAtRisk) else "breached"
    label = event.target.replace("_", " ")
    due = event.due_at.strftime("%Y-%m-%d %H:%M UTC")
    return EscalationPlan(
        kind=step.kind,
        target_type=step.target_type,
        target=target,
        reason=f"automatic: {priority.value} {label} target {what} (due {due})",
    )


KIND = Kind("EscalationRules", evolve_escalation_rules, lambda queue: EscalationRules(queue=queue))
"""Keyed by the queue's name; the default rules apply until the queue's are set."""
