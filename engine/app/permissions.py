"""Who may do what, and who may read which field: the role table and the field
visibility table (the README shows both, generated from here).

Ownership rules sit beside the role table: requesters act only on their own tickets, and
agents work (start, pend, resume, resolve, accept, release) only tickets assigned to
them; leads and admins may act on any ticket. The visibility table says, for every data
field of every event type, which roles may read it on any read path; which records a
role reaches at all (its own tickets, its own workload) the role table and the ownership
rules decide.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from engine.domain.base import EVENT_TYPES, PermissionDeniedError
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
    auditors, leads and admins all of it; requesters their own ticket's public part
    (which fields of each event either sees: ``fields_shown``)."""
    if may(principal, "read_audit"):
        return principal.role in INTERNAL_NOTE_READERS
    if principal.role == Role.REQUESTER and requester_of_ticket() == principal.id:
        return principal.role in INTERNAL_NOTE_READERS
    raise PermissionDeniedError(
        "the audit view is for auditors, leads and admins (requesters: their own tickets)"
    )


# --- who may read which field ----------------------------------------------------------
# Every data field of every event type has an audience: the roles that may read it on any
# read path (history, public history, export, the event stream, a ticket, an escalation,
# the views). A read path shows a field to a role in its audience and nothing else:
# event data without the field, a folded view with the field null (``shown_to``).

EVERYONE = frozenset(Role)  # a ticket's requester too, on their own ticket
STAFF = frozenset({A, L, AU, AD})  # how the desk works a ticket: its reasons and notes
OVERSIGHT = frozenset({L, AU, AD})  # running and auditing the desk: people, keys, config


def _see(everyone: str = "", staff: str = "", oversight: str = "") -> dict[str, frozenset[Role]]:
    out: dict[str, frozenset[Role]] = {}
    for audience, names in ((EVERYONE, everyone), (STAFF, staff), (OVERSIGHT, oversight)):
        out.update(dict.fromkeys(names.split(), audience))
    return out


_SLA_ID = "ticket_id source_version"
# ``subject_id``: whose key seals an event's personal fields (the ticket's requester, or
# the agent); as readable as the requester's or the agent's id elsewhere.
VISIBILITY: dict[str, dict[str, frozenset[Role]]] = {
    # Ticket: what the requester said and was told; staff's reasons stay with staff.
    "TicketOpened": _see(
        "title description requester_id requester_name requester_email channel category "
        "impact urgency"
    ),
    "TicketTriaged": _see(
        "impact urgency matrix_priority priority subject_id", staff="override_reason"
    ),
    # Internal notes are not shown to requesters at all (``event_shown``).
    "TicketCommented": _see("comment_id body visibility author_role subject_id"),
    "TicketWorkStarted": {},
    "TicketPended": _see("reason waiting_on subject_id"),
    "TicketResumed": _see("note subject_id"),
    "TicketResolved": _see("resolution_code note subject_id"),
    "TicketReopened": _see("reason subject_id"),
    "TicketClosed": _see("reason subject_id"),
    "TicketCancelled": _see("reason subject_id"),
    "TicketLinked": _see("relation other_ticket_id"),
    "TicketMerged": _see("into_ticket_id reason subject_id"),
    "SatisfactionRated": _see("score comment subject_id"),
    "TicketEscalated": _see("escalation_id level escalation_level"),
    "TicketEscalationClosed": _see("escalation_id escalation_level"),
    # Assignment: who has the ticket; not why, nor anyone's load and capacity.
    "AssignedToQueue": _see("ticket_id queue previous_queue subject_id", staff="reason"),
    "AssignedToAgent": _see(
        "ticket_id agent_id queue subject_id",
        staff="policy agent_load agent_capacity capacity_override_reason",
    ),
    "Reassigned": _see(
        "ticket_id from_agent_id agent_id queue subject_id",
        staff="reason agent_load agent_capacity capacity_override_reason",
    ),
    "AssignmentAccepted": _see("ticket_id agent_id"),
    "AssignmentReleased": _see("ticket_id agent_id subject_id", staff="reason"),
    "RoutingDecided": _see(
        "ticket_id queue agent_id",
        staff="policy policy_version candidates tie_break explanation",
    ),
    "RoutingDeferred": _see("ticket_id queue", staff="policy policy_version candidates reason"),
    # Escalation: that the ticket is escalated, and how far; not to whom or why.
    "EscalationRaised": _see(
        "ticket_id kind level subject_id", staff="target_type target reason trigger"
    ),
    "EscalationAcknowledged": _see("ticket_id subject_id", staff="note"),
    "VendorReferenceRecorded": _see("ticket_id", staff="vendor reference"),
    "EscalationResolved": _see("ticket_id subject_id", staff="note"),
    "EscalationWithdrawn": _see("ticket_id subject_id", staff="reason"),
    # SLA clock: a requester sees their ticket's targets and due times.
    "SlaClockStarted": _see(
        f"{_SLA_ID} term priority policy_version calendar calendar_version "
        "first_response_target resolution_target at_risk_share started_at deadlines",
        staff="reason",
    ),
    "SlaClockPaused": _see(f"{_SLA_ID} paused_at", staff="reason"),
    "SlaClockResumed": _see(f"{_SLA_ID} resumed_at deadlines", staff="reason"),
    "SlaClockStopped": _see(f"{_SLA_ID} stopped_at", staff="reason"),
    "FirstResponseMet": _see(f"{_SLA_ID} responded_at elapsed within_target"),
    "SlaMet": _see(f"{_SLA_ID} resolved_at elapsed within_target"),
    "SlaAtRisk": _see("ticket_id target term priority at_risk_at due_at share"),
    "SlaBreached": _see("ticket_id target term priority due_at"),
    # Agents: their name is on the tickets they work; their directory entry is staff's.
    "AgentRegistered": _see("name", staff="role queues capacity subject_id", oversight="email"),
    "AgentUpdated": _see(staff="queues capacity active subject_id", oversight="reason"),
    "AgentAvailabilitySet": _see(staff="status reason subject_id"),
    "AgentScheduleSet": _see(staff="schedule reason subject_id"),
    "AgentTookTicket": _see(staff="ticket_id"),
    "AgentDroppedTicket": _see(staff="ticket_id why"),
    "QueueCreated": _see("name", staff="description"),
    # Configuration, keys, erasure, idempotency records and checkpoints.
    "RoutingPolicySet": _see(oversight="queue policy reason"),
    "RoutingTurnTaken": _see(oversight="queue ticket_id agent_id"),
    "EscalationRulesSet": _see(oversight="queue lead default by_priority reason"),
    "SlaPolicySet": _see(oversight="targets at_risk_share reason"),
    "SlaCalendarSet": _see(oversight="calendar reason"),
    "CredentialIssued": _see(oversight="principal_id name role agent_id"),
    "CredentialRevoked": _see(oversight="reason subject_id"),
    "SubjectErased": _see(oversight="subject_id legal_basis"),
    "SystemBootstrapped": _see(oversight="admin_principal_id"),
    "CommandProcessed": _see(oversight="key method path request_hash status_code response"),
    "CheckpointRecorded": _see(oversight="position stream_count merkle_root public_key signature"),
}


def readers(type_name: str, field: str) -> frozenset[Role]:
    """The roles that may read ``field`` of events of type ``type_name``; nobody for a
    type or field the table does not name (a test holds the table complete)."""
    return VISIBILITY.get(type_name, {}).get(field, frozenset())


def _sees_all(role: Role) -> bool:
    return all(
        role in readers(name, field)
        for name, cls in EVENT_TYPES.items()
        for field in cls.model_fields
        if field not in cls.ENVELOPE_FIELDS
    )


Shown = Callable[[str], frozenset[str]]
"""The data fields of an event type a reader may see (``fields_shown``)."""


def fields_shown(principal: Principal) -> Shown | None:
    """What the caller may see of each event type's data; None: every field."""
    role = principal.role
    if _sees_all(role):
        return None

    def fields(type_name: str) -> frozenset[str]:
        return frozenset(f for f, who in VISIBILITY.get(type_name, {}).items() if role in who)

    return fields


INTERNAL_NOTE_READERS = STAFF


def event_shown(principal: Principal, type_name: str, data: Mapping[str, Any]) -> bool:
    """Whether the caller sees this event at all: internal notes are staff's."""
    if type_name == "TicketCommented" and data.get("visibility") == "internal":
        return principal.role in INTERNAL_NOTE_READERS
    return True


def may_read_raw_stream(principal: Principal) -> None:
    """The event stream (``GET /events``) is the recorded envelopes byte for byte (their
    hashes cover every byte), so only roles that may read every field get it."""
    authorize(principal, "read_events")
    if not _sees_all(principal.role):
        raise PermissionDeniedError(
            f"role {principal.role.value} may not read every field, so not the raw stream"
        )


M = TypeVar("M", bound=BaseModel)


def shown_to(principal: Principal, model: M) -> M:
    """A folded view (a ticket, an escalation, a queue row) as the caller may see it:
    each field derived from event fields the caller may not read is null. The model
    names its fields' sources in ``sources`` (field -> ``"EventType.field"`` ...)."""
    sources: Mapping[str, tuple[str, ...]] = getattr(type(model), "sources", {})
    role = principal.role
    hidden = {
        name: None
        for name, origins in sources.items()
        if any(role not in readers(*origin.split(".", 1)) for origin in origins)
    }
    return model.model_copy(update=hidden) if hidden else model
