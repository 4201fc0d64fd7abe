"""Who may do what: the role table (the README shows the same table).

Ownership rules sit beside the table: requesters act only on their own tickets, and
agents work (start, pend, resume, resolve, accept, release) only tickets assigned to
them; leads and admins may act on any ticket.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from engine.domain.base import PermissionDeniedError
from engine.domain.directory import Role

R, A, L, AU, AD = Role.REQUESTER, Role.AGENT, Role.LEAD, Role.AUDITOR, Role.ADMIN

PERMISSIONS: dict[str, frozenset[Role]] = {
    "open": frozenset({R, A, L, AD}),
    "read_ticket": frozenset({R, A, L, AU, AD}),
    "triage": frozenset({A, L, AD}),
    "override_priority": frozenset({L, AD}),
    "comment": frozenset({R, A, L, AD}),
    "comment_internal": frozenset({A, L, AD}),
    "assign": frozenset({A, L, AD}),
    "assign_others": frozenset({L, AD}),
    "override_capacity": frozenset({L, AD}),
    "accept": frozenset({A, L}),
    "release": frozenset({A, L, AD}),
    "start": frozenset({A, L}),
    "pend": frozenset({A, L}),
    "resume": frozenset({A, L}),
    "resolve": frozenset({A, L}),
    "reopen": frozenset({R, A, L, AD}),
    "close": frozenset({L, AD}),
    "cancel": frozenset({R, L, AD}),
    "link": frozenset({A, L, AD}),
    "merge": frozenset({A, L, AD}),
    "rate": frozenset({R}),
    "escalate": frozenset({A, L, AD}),
    "work_escalation": frozenset({A, L, AD}),
    "manage_directory": frozenset({AD}),
    "read_directory": frozenset({L, AD}),
    "read_queues": frozenset({A, L, AD}),
    "read_audit": frozenset({AU, L, AD}),
    "read_reports": frozenset({L, AU, AD}),
    "read_events": frozenset({AU, AD}),
    "read_metrics": frozenset({AU, AD}),
    "manage_sla": frozenset({AD}),
    "read_sla_config": frozenset({L, AU, AD}),
    "set_others_availability": frozenset({L, AD}),
}

# Actions an agent may take only on tickets assigned to them.
ASSIGNEE_ONLY = frozenset({"accept", "release", "start", "pend", "resume", "resolve"})


class Principal(BaseModel):
    """The authenticated caller: the actor of every event it causes."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    role: Role
    agent_id: UUID | None = None


def authorize(
    principal: Principal,
    action: str,
    *,
    requester_id: str | None = None,
    assignee: UUID | None = None,
) -> None:
    """Raise PermissionDeniedError unless ``principal`` may take ``action`` (their role
    may, and on a ticket: it is theirs, or assigned to them, as ``action`` needs)."""
    require_role(principal, action)
    if principal.role == Role.REQUESTER and requester_id is not None:
        if requester_id != principal.id:
            raise PermissionDeniedError("requesters act only on their own tickets")
    if principal.role == Role.AGENT and action in ASSIGNEE_ONLY:
        if assignee is None or assignee != principal.agent_id:
            raise PermissionDeniedError(
                f"agents may {action} only tickets assigned to them; ask a lead"
            )


def require_role(principal: Principal, action: str) -> None:
    """Raise PermissionDeniedError unless ``principal``'s role may ever take ``action``."""
    if principal.role not in PERMISSIONS[action]:
        allowed = ", ".join(sorted(r.value for r in PERMISSIONS[action]))
        raise PermissionDeniedError(
            f"role {principal.role.value} may not {action.replace('_', ' ')} (allowed: {allowed})"
        )


def may(principal: Principal, action: str) -> bool:
    return principal.role in PERMISSIONS[action]


# --- the checks command handlers name (engine.app.handlers) -----------------------------


def ticket_owner(action: str) -> Callable[[Principal, Any, Any], None]:
    """Requesters act on their own tickets, agents work the tickets assigned to them."""

    def check(principal: Principal, command: Any, state: Any) -> None:
        authorize(
            principal, action, requester_id=state.ticket.requester_id, assignee=state.assignee
        )

    return check


def may_override_priority(principal: Principal, command: Any, state: Any) -> None:
    """A priority other than the matrix's is a lead's decision."""
    ticket_owner("triage")(principal, command, state)
    matrix_priority = state.rules.matrix.priority(command.impact, command.urgency)
    if command.priority is not None and command.priority != matrix_priority:
        authorize(principal, "override_priority")


def may_comment(principal: Principal, command: Any) -> None:
    if command.internal:
        authorize(principal, "comment_internal")


def may_assign(principal: Principal, command: Any) -> None:
    """Assigning a colleague, or past an agent's capacity, is a lead's decision."""
    if command.agent_id is not None and command.agent_id != principal.agent_id:
        authorize(principal, "assign_others")
    if command.override_capacity_reason:
        authorize(principal, "override_capacity")


def may_move_ticket(principal: Principal, command: Any, state: Any) -> None:
    """Taking a ticket away from a colleague is a lead's decision; an agent moves only
    tickets of their own queues (a ticket in no queue yet is anyone's to route), and
    takes one into a queue only if they are a member of it (the domain checks that)."""
    ticket_owner("assign")(principal, command, state)
    if state.assignee is not None and state.assignee != principal.agent_id:
        authorize(principal, "assign_others")
    current = state.assignment.queue
    if current is None or may(principal, "assign_others"):
        return
    sender = state.find_agent(principal.agent_id) if principal.agent_id is not None else None
    if sender is None or current not in sender.queues:
        raise PermissionDeniedError(
            f"the ticket is in queue {current!r}, which is not one of yours: "
            "ask a lead or a member of that queue to move it"
        )


def may_change_agent(principal: Principal, command: Any) -> None:
    """An agent sets their own availability; leads and admins anyone's."""
    if principal.agent_id != command.agent_id:
        authorize(principal, "set_others_availability")


# --- the read side's checks (api/routers/views.py) -----------------------------------------


def may_read_workload(principal: Principal, agent_id: UUID) -> None:
    """Agents see their own workload; leads and admins anyone's."""
    authorize(principal, "read_directory" if principal.agent_id != agent_id else "read_queues")


def search_scope(principal: Principal, requester: str | None) -> str | None:
    """Whose tickets a search may show: a requester's own only."""
    authorize(principal, "read_ticket")
    return principal.id if principal.role == Role.REQUESTER else requester


def history_scope(principal: Principal, requester_of_ticket: Callable[[], str]) -> bool:
    """Whether the caller may read a ticket's history, and with its internal notes:
    auditors, leads and admins all of it; requesters their own ticket's public part."""
    if may(principal, "read_audit"):
        return True
    if principal.role == Role.REQUESTER and requester_of_ticket() == principal.id:
        return False
    raise PermissionDeniedError(
        "the audit view is for auditors, leads and admins (requesters: their own tickets)"
    )
