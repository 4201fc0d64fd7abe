"""The service-level configuration's rows: SLA policy, calendars, a queue's routing
policy and escalation rules, an agent's availability and schedule."""

from __future__ import annotations

from typing import Any

from engine.app import permissions as perm
from engine.app.config import SlaConfig
from engine.app.handlers.directory import stream_answer
from engine.app.repository import Repository
from engine.app.runner import Handler
from engine.domain import routing, sla
from engine.domain.commands import service_levels as cmd
from engine.domain.commands.base import Command


def load_policy(repo: Repository, c: cmd.SetSlaPolicy) -> cmd.PolicyState:
    config = SlaConfig(repo)
    return cmd.PolicyState(policy=config.policy(), calendars=config.calendar_names())


def load_calendar(repo: Repository, c: cmd.SetCalendar) -> sla.CalendarVersion | None:
    return SlaConfig(repo).find_calendar(c.name)


def load_routing(repo: Repository, c: cmd.SetRoutingPolicy) -> routing.QueueRouting:
    repo.queue(c.queue)
    return SlaConfig(repo).routing_policy(c.queue)


def load_rules(repo: Repository, c: cmd.SetEscalationRules) -> sla.EscalationRules:
    repo.queue(c.queue)
    for target in c.queues_named():
        repo.queue(target)
    return SlaConfig(repo).escalation_rules(c.queue)


def load_agent(repo: Repository, c: cmd.SetAvailability | cmd.SetSchedule) -> cmd.AgentState:
    agent, availability = repo.agent_with_availability(c.agent_id)
    return cmd.AgentState(agent=agent, availability=availability)


HANDLERS: dict[type[Command], Handler[Any, Any]] = {
    cmd.SetSlaPolicy: Handler(
        "manage_sla", load_policy, cmd.set_policy, stream_answer(lambda c: sla.POLICY_ID)
    ),
    cmd.SetCalendar: Handler(
        "manage_sla",
        load_calendar,
        cmd.set_calendar,
        stream_answer(lambda c: sla.calendar_id(c.name)),
    ),
    cmd.SetRoutingPolicy: Handler(
        "manage_sla",
        load_routing,
        cmd.set_routing_policy,
        stream_answer(lambda c: routing.routing_policy_id(c.queue)),
    ),
    cmd.SetEscalationRules: Handler(
        "manage_sla",
        load_rules,
        cmd.set_escalation_rules,
        stream_answer(lambda c: sla.escalation_rules_id(c.queue)),
    ),
    cmd.SetAvailability: Handler(
        None,
        load_agent,
        cmd.set_availability,
        stream_answer(lambda c: c.agent_id),
        guard=perm.may_change_agent,
    ),
    cmd.SetSchedule: Handler(
        None,
        load_agent,
        cmd.set_schedule,
        stream_answer(lambda c: c.agent_id),
        guard=perm.may_change_agent,
    ),
}
