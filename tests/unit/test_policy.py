"""The role table and its ownership rules (engine.app.permissions.authorize)."""

from __future__ import annotations

from uuid import UUID

import pytest

from engine.app.permissions import ASSIGNEE_ONLY, PERMISSIONS, Principal, authorize, may
from engine.domain.base import PermissionDeniedError
from engine.domain.directory import Role

ANN = UUID("00000000-0000-4000-8000-00000000a001")
BO = UUID("00000000-0000-4000-8000-00000000a002")
LEE = UUID("00000000-0000-4000-8000-00000000a003")

PRINCIPALS = {
    Role.REQUESTER: Principal(id="requester:rita", name="Rita", role=Role.REQUESTER),
    Role.AGENT: Principal(id=f"agent:{ANN}", name="Ann", role=Role.AGENT, agent_id=ANN),
    Role.LEAD: Principal(id=f"agent:{LEE}", name="Lee", role=Role.LEAD, agent_id=LEE),
    Role.AUDITOR: Principal(id="auditor:al", name="Al", role=Role.AUDITOR),
    Role.ADMIN: Principal(id="admin:root", name="root", role=Role.ADMIN),
}
REQUESTER, AGENT, LEAD = PRINCIPALS[Role.REQUESTER], PRINCIPALS[Role.AGENT], PRINCIPALS[Role.LEAD]


def allowed(principal: Principal, action: str, **context: object) -> bool:
    try:
        authorize(principal, action, **context)  # type: ignore[arg-type]
    except PermissionDeniedError:
        return False
    return True


@pytest.mark.parametrize("action", sorted(PERMISSIONS))
@pytest.mark.parametrize("role", list(Role))
def test_the_table_decides_for_a_principal_acting_on_their_own_ticket(
    role: Role, action: str
) -> None:
    # The requester is the ticket's requester and the agent its assignee: only the table counts.
    principal = PRINCIPALS[role]
    own = {"requester_id": principal.id, "assignee": principal.agent_id or ANN}
    assert allowed(principal, action, **own) == (role in PERMISSIONS[action])
    assert may(principal, action) == (role in PERMISSIONS[action])


def test_a_refusal_names_the_role_and_who_may() -> None:
    with pytest.raises(
        PermissionDeniedError,
        match=r"role agent may not override priority \(allowed: admin, lead\)",
    ):
        authorize(AGENT, "override_priority")


@pytest.mark.parametrize("action", ["override_priority", "override_capacity"])
def test_only_leads_and_admins_override(action: str) -> None:
    assert {r for r in Role if may(PRINCIPALS[r], action)} == {Role.LEAD, Role.ADMIN}


def test_requesters_cannot_comment_internally() -> None:
    assert allowed(REQUESTER, "comment", requester_id=REQUESTER.id)
    assert not allowed(REQUESTER, "comment_internal")
    assert allowed(AGENT, "comment_internal")


@pytest.mark.parametrize(
    "action",
    sorted(a for a, roles in PERMISSIONS.items() if Role.REQUESTER in roles and a != "open"),
)
def test_requesters_act_only_on_their_own_tickets(action: str) -> None:
    assert allowed(REQUESTER, action, requester_id=REQUESTER.id)
    with pytest.raises(PermissionDeniedError, match="only on their own tickets"):
        authorize(REQUESTER, action, requester_id="requester:someone-else")


@pytest.mark.parametrize("action", sorted(ASSIGNEE_ONLY))
def test_agents_work_only_tickets_assigned_to_them(action: str) -> None:
    assert allowed(AGENT, action, assignee=ANN)
    for assignee in (BO, None):
        with pytest.raises(
            PermissionDeniedError, match=f"agents may {action} only tickets assigned"
        ):
            authorize(AGENT, action, assignee=assignee)


@pytest.mark.parametrize("action", sorted(ASSIGNEE_ONLY))
def test_leads_work_any_ticket(action: str) -> None:
    assert allowed(LEAD, action, assignee=BO)
    assert allowed(LEAD, action, assignee=None)


def test_the_work_actions_are_the_assignee_only_actions() -> None:
    assert ASSIGNEE_ONLY == {"accept", "release", "start", "pend", "resume", "resolve"}


def test_auditors_only_read() -> None:
    assert {a for a in PERMISSIONS if may(PRINCIPALS[Role.AUDITOR], a)} == {
        a for a in PERMISSIONS if a.startswith("read_")
    } - {"read_directory", "read_queues"}


def test_only_requesters_rate_and_only_admins_manage_the_directory() -> None:
    assert {r for r in Role if may(PRINCIPALS[r], "rate")} == {Role.REQUESTER}
    assert {r for r in Role if may(PRINCIPALS[r], "manage_directory")} == {Role.ADMIN}
