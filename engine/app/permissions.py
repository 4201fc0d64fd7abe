"""Who may do what: the role table (the README shows the same table).

Ownership rules sit beside the table: requesters act only on their own tickets, and
agents work (start, pend, resume, resolve, accept, release) only tickets assigned to
them; leads and admins may act on any ticket.
"""

from __future__ import annotations

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
    """Raise PermissionDeniedError unless ``principal`` may take ``action``."""
    if principal.role not in PERMISSIONS[action]:
        allowed = ", ".join(sorted(r.value for r in PERMISSIONS[action]))
        raise PermissionDeniedError(
            f"role {principal.role.value} may not {action.replace('_', ' ')} (allowed: {allowed})"
        )
    if principal.role == Role.REQUESTER and requester_id is not None:
        if requester_id != principal.id:
            raise PermissionDeniedError("requesters act only on their own tickets")
    if principal.role == Role.AGENT and action in ASSIGNEE_ONLY:
        if assignee is None or assignee != principal.agent_id:
            raise PermissionDeniedError(
                f"agents may {action} only tickets assigned to them; ask a lead"
            )


def may(principal: Principal, action: str) -> bool:
    return principal.role in PERMISSIONS[action]
