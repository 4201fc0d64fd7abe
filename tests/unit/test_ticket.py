"""The Ticket decider: every command in every status, then the lifecycle's rules."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid5

import pytest
from givens import Like, given, like
from pydantic import ValidationError

from engine.domain import assignment as asg
from engine.domain import directory as dirs
from engine.domain import ticket as tk
from engine.domain.base import (
    CommandMeta,
    DomainEvent,
    InvalidTransitionError,
    RuleViolationError,
)
from engine.domain.priority import Level, Priority, PriorityMatrix

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TICKET = UUID("00000000-0000-4000-8000-000000000001")
OTHER = UUID("00000000-0000-4000-8000-000000000002")
THIRD = UUID("00000000-0000-4000-8000-000000000003")
ESCALATION = UUID("00000000-0000-4000-8000-0000000000e1")
SECOND_ESCALATION = UUID("00000000-0000-4000-8000-0000000000e2")
COMMENT = UUID("00000000-0000-4000-8000-0000000000c1")
CORRELATION = UUID("00000000-0000-4000-8000-0000000000aa")
CAUSATION = UUID("00000000-0000-4000-8000-0000000000bb")
MATRIX = PriorityMatrix()
WINDOW = timedelta(days=7)
QUEUE = "service-desk"
STATUSES = ("new", "assigned", "in_progress", "pending", "resolved", "closed", "cancelled")


def meta(minutes: int, actor: str = "agent:lee") -> CommandMeta:
    """A command's metadata at T0 + ``minutes``; ids are derived so failures reproduce."""
    return CommandMeta(
        actor=actor,
        occurred_at=T0 + timedelta(minutes=minutes),
        correlation_id=uuid5(CORRELATION, str(minutes)),
        causation_id=CAUSATION,
    )


def agent(name: str) -> dirs.Agent:
    """A registered agent of QUEUE with capacity 2 and no tickets yet."""
    agent_id = uuid5(CORRELATION, name)
    events = dirs.register_agent(meta(0), agent_id, name, None, dirs.Role.AGENT, [QUEUE], 2)
    return dirs.evolve_agent(None, events[0])


ANN, BO = agent("Ann"), agent("Bo")


# --- folding a history --------------------------------------------------------------


def ticket_of(history: Sequence[DomainEvent], ticket_id: UUID = TICKET) -> tk.Ticket:
    state = tk.fold([e for e in history if e.originator_id == ticket_id])
    assert state is not None, f"no ticket {ticket_id} in the history"
    return state


def assignment_of(history: Sequence[DomainEvent], ticket_id: UUID = TICKET) -> asg.Assignment:
    state = asg.empty(ticket_id)
    for event in history:
        if event.originator_id == state.id:
            state = asg.evolve(state, event)
    return state


def status_of(history: Sequence[DomainEvent], ticket_id: UUID = TICKET) -> str:
    return tk.public_status(
        ticket_of(history, ticket_id), assignment_of(history, ticket_id).agent_id
    )


# --- histories that leave TICKET in each status (OTHER stays new) ------------------------


def opened(ticket_id: UUID, minutes: int = 0) -> list[DomainEvent]:
    cmd = tk.OpenTicket(
        ticket_id=ticket_id,
        title="VPN drops every hour",
        description="Since Monday",
        requester_id="requester:rita",
        channel=tk.Channel.EMAIL,
        category="network",
        impact=Level.MEDIUM,
        urgency=Level.HIGH,
    )
    return tk.open_ticket(cmd, meta(minutes), MATRIX)


TicketStep = Callable[[tk.Ticket, UUID | None, CommandMeta], list[DomainEvent]]


def then_do(history: list[DomainEvent], step: TicketStep) -> list[DomainEvent]:
    """Append what ``step`` decides on TICKET, one minute after the last event."""
    t = ticket_of(history)
    minutes = len(history)
    return history + step(t, assignment_of(history).agent_id, meta(minutes))


def assigned_to(history: list[DomainEvent], who: dirs.Agent) -> list[DomainEvent]:
    a = assignment_of(history)
    m = meta(len(history))
    events = asg.assign_queue(a, m, QUEUE, None)
    a = asg.evolve(a, events[0]) if events else a
    return history + events + asg.assign_agent(a, m, who, QUEUE, None, None)


def history_in(status: str) -> list[DomainEvent]:
    base = opened(TICKET) + opened(OTHER)
    if status == "new":
        return base
    if status == "cancelled":
        return then_do(base, lambda t, a, m: tk.cancel(t, a, m, "sent twice"))
    history = assigned_to(base, ANN)
    if status == "assigned":
        return history
    history = then_do(history, tk.start)
    if status == "in_progress":
        return history
    if status == "pending":
        return then_do(history, lambda t, a, m: tk.pend(t, a, m, "awaiting logs", "customer"))
    history = then_do(history, lambda t, a, m: tk.resolve(t, a, m, "fixed", "new VPN profile"))
    if status == "resolved":
        return history
    assert status == "closed"
    return then_do(history, lambda t, a, m: tk.close(t, a, m, None))


def test_each_history_reaches_its_status() -> None:
    for status in STATUSES:
        assert status_of(history_in(status)) == status
        assert status_of(history_in(status), OTHER) == "new"


# --- every command, as the desk composes it, with what it records when allowed --------


@dataclass(frozen=True)
class Command:
    """A command on TICKET: how it is decided, what it records, where it leads."""

    decide: Callable[[tk.Ticket, asg.Assignment, tk.Ticket, CommandMeta], list[DomainEvent]]
    records: Callable[[tk.Ticket, asg.Assignment, tk.Ticket], list[Like]]
    leads_to: Callable[[str], str] = lambda status: status


def _assign(t: tk.Ticket, a: asg.Assignment, o: tk.Ticket, m: CommandMeta) -> list[DomainEvent]:
    tk.require(t, a.agent_id, "assign")
    return asg.assign_agent(a, m, BO, QUEUE, "Bo knows VPNs", None)


def _assign_records(t: tk.Ticket, a: asg.Assignment, o: tk.Ticket) -> list[Like]:
    common = {"originator_id": a.id, "originator_version": a.version + 1, "ticket_id": t.id}
    if a.agent_id is None:
        return [like(asg.AssignedToAgent, **common, agent_id=BO.id, queue=QUEUE, agent_load=0)]
    return [
        like(
            asg.Reassigned,
            **common,
            from_agent_id=a.agent_id,
            agent_id=BO.id,
            reason="Bo knows VPNs",
        )
    ]


def _accept(t: tk.Ticket, a: asg.Assignment, o: tk.Ticket, m: CommandMeta) -> list[DomainEvent]:
    tk.require(t, a.agent_id, "accept")
    assert a.agent_id is not None
    return asg.accept(a, m, a.agent_id)


def _release(t: tk.Ticket, a: asg.Assignment, o: tk.Ticket, m: CommandMeta) -> list[DomainEvent]:
    tk.require(t, a.agent_id, "release")
    return asg.release(a, m, "wrong team")


def _on_ticket(event_type: type[DomainEvent], **fields: object) -> Callable[..., list[Like]]:
    def records(t: tk.Ticket, a: asg.Assignment, o: tk.Ticket) -> list[Like]:
        return [like(event_type, originator_id=t.id, originator_version=t.version + 1, **fields)]

    return records


COMMANDS: dict[str, Command] = {
    "triage": Command(
        lambda t, a, o, m: tk.triage(t, a.agent_id, m, MATRIX, Level.LOW, Level.LOW, None, None),
        _on_ticket(
            tk.TicketTriaged,
            impact=Level.LOW,
            urgency=Level.LOW,
            matrix_priority=Priority.P4,
            priority=Priority.P4,
            override_reason=None,
        ),
    ),
    "comment": Command(
        lambda t, a, o, m: tk.comment(
            t, a.agent_id, m, COMMENT, "Tried a restart?", "public", "agent"
        ),
        _on_ticket(
            tk.TicketCommented,
            comment_id=COMMENT,
            body="Tried a restart?",
            visibility="public",
            author_role="agent",
        ),
    ),
    "assign": Command(
        _assign, _assign_records, lambda status: "assigned" if status == "new" else status
    ),
    "accept": Command(
        _accept,
        lambda t, a, o: [
            like(asg.AssignmentAccepted, originator_id=a.id, ticket_id=t.id, agent_id=a.agent_id)
        ],
    ),
    "release": Command(
        _release,
        lambda t, a, o: [
            like(
                asg.AssignmentReleased, originator_id=a.id, agent_id=a.agent_id, reason="wrong team"
            )
        ],
        lambda status: "new",
    ),
    "start": Command(
        lambda t, a, o, m: tk.start(t, a.agent_id, m),
        _on_ticket(tk.TicketWorkStarted),
        lambda status: "in_progress",
    ),
    "pend": Command(
        lambda t, a, o, m: tk.pend(t, a.agent_id, m, "awaiting logs", "vendor"),
        _on_ticket(tk.TicketPended, reason="awaiting logs", waiting_on="vendor"),
        lambda status: "pending",
    ),
    "resume": Command(
        lambda t, a, o, m: tk.resume(t, a.agent_id, m, "logs arrived"),
        _on_ticket(tk.TicketResumed, note="logs arrived"),
        lambda status: "in_progress",
    ),
    "resolve": Command(
        lambda t, a, o, m: tk.resolve(t, a.agent_id, m, "fixed", "new VPN profile"),
        _on_ticket(tk.TicketResolved, resolution_code="fixed", note="new VPN profile"),
        lambda status: "resolved",
    ),
    "reopen": Command(
        lambda t, a, o, m: tk.reopen(t, a.agent_id, m, "drops again", WINDOW),
        _on_ticket(tk.TicketReopened, reason="drops again"),
        # Every resolved history here has Ann assigned, so the ticket returns to her.
        lambda status: "assigned",
    ),
    "close": Command(
        lambda t, a, o, m: tk.close(t, a.agent_id, m, "confirmed by customer"),
        _on_ticket(tk.TicketClosed, reason="confirmed by customer"),
        lambda status: "closed",
    ),
    "cancel": Command(
        lambda t, a, o, m: tk.cancel(t, a.agent_id, m, "sent twice"),
        _on_ticket(tk.TicketCancelled, reason="sent twice"),
        lambda status: "cancelled",
    ),
    "link": Command(
        lambda t, a, o, m: tk.link(t, o, a.agent_id, m, tk.Relation.PARENT),
        lambda t, a, o: [
            *_on_ticket(tk.TicketLinked, relation=tk.Relation.PARENT, other_ticket_id=o.id)(
                t, a, o
            ),
            like(
                tk.TicketLinked,
                originator_id=o.id,
                originator_version=o.version + 1,
                relation=tk.Relation.CHILD,
                other_ticket_id=t.id,
            ),
        ],
    ),
    "merge": Command(
        lambda t, a, o, m: tk.merge(t, o, a.agent_id, m, "same outage"),
        lambda t, a, o: [
            *_on_ticket(tk.TicketMerged, into_ticket_id=o.id, reason="same outage")(t, a, o),
            like(
                tk.TicketLinked,
                originator_id=o.id,
                originator_version=o.version + 1,
                relation=tk.Relation.MERGED_FROM,
                other_ticket_id=t.id,
            ),
        ],
        lambda status: "closed",
    ),
    "rate": Command(
        lambda t, a, o, m: tk.rate(t, a.agent_id, m, 4, "quick"),
        _on_ticket(tk.SatisfactionRated, score=4, comment="quick"),
    ),
    "escalate": Command(
        lambda t, a, o, m: tk.escalated(t, a.agent_id, m, ESCALATION, None)[1],
        _on_ticket(tk.TicketEscalated, escalation_id=ESCALATION, level=1, escalation_level=1),
    ),
}

MATRIX_CASES = [(status, action) for status in tk.ALLOWED for action in sorted(COMMANDS)]


def on(command: Command) -> Callable[[Sequence[DomainEvent]], list[DomainEvent]]:
    """Adapt a command to the given/when shape: fold the history, decide one minute on."""

    def decide(history: Sequence[DomainEvent]) -> list[DomainEvent]:
        t, a, o = ticket_of(history), assignment_of(history), ticket_of(history, OTHER)
        return command.decide(t, a, o, meta(len(history), actor="agent:decider"))

    return decide


def test_the_matrix_covers_every_status_and_every_action() -> None:
    assert set(tk.ALLOWED) == set(STATUSES)
    assert set().union(*tk.ALLOWED.values()) == set(COMMANDS)


def test_the_table_follows_the_issue() -> None:
    # The rules the issue states in words, checked against the table.
    assert tk.ALLOWED["cancelled"] == frozenset()
    assert tk.ALLOWED["closed"] == {"rate"}
    assert {s for s in STATUSES if "rate" in tk.ALLOWED[s]} == {"resolved", "closed"}
    assert {s for s in STATUSES if "reopen" in tk.ALLOWED[s]} == {"resolved"}
    assert {s for s in STATUSES if "accept" in tk.ALLOWED[s]} == {"assigned"}
    assert {s for s in STATUSES if "resume" in tk.ALLOWED[s]} == {"pending"}
    assert {s for s in STATUSES if "pend" in tk.ALLOWED[s]} == {"in_progress"}
    assert {s for s in STATUSES if "cancel" in tk.ALLOWED[s]} == {
        "new",
        "assigned",
        "in_progress",
        "pending",
    }


@pytest.mark.parametrize(
    ("status", "action"), [c for c in MATRIX_CASES if c[1] in tk.ALLOWED[c[0]]]
)
def test_an_allowed_command_records_its_events(status: str, action: str) -> None:
    history = history_in(status)
    t, a, o = ticket_of(history), assignment_of(history), ticket_of(history, OTHER)
    command = COMMANDS[action]

    # Check the events and their key fields and versions.
    events = given(history).when(on(command)).then(*command.records(t, a, o))

    # Check every event carries the command's metadata.
    m = meta(len(history), actor="agent:decider")
    for event in events:
        assert (event.actor, event.occurred_at) == (m.actor, m.occurred_at)
        assert (event.correlation_id, event.causation_id) == (m.correlation_id, m.causation_id)
    assert len({e.event_id for e in history + events}) == len(history) + len(events)

    # Check the folded result lands in the expected status.
    assert status_of(history + events) == command.leads_to(status)


@pytest.mark.parametrize(
    ("status", "action"), [c for c in MATRIX_CASES if c[1] not in tk.ALLOWED[c[0]]]
)
def test_a_refused_command_names_the_status_and_what_is_allowed(status: str, action: str) -> None:
    error = given(history_in(status)).when(on(COMMANDS[action])).then_raises(InvalidTransitionError)

    assert (error.aggregate, error.state, error.action) == ("ticket", status, action)
    assert error.allowed == sorted(tk.ALLOWED[status])
    assert f"that is {status}" in str(error)
    for allowed in tk.ALLOWED[status]:
        assert allowed in str(error)
    if not tk.ALLOWED[status]:
        assert "allowed now: none" in str(error)


# --- opening and triage --------------------------------------------------------------


def test_opening_records_the_ticket_and_its_matrix_priority() -> None:
    events = (
        given()
        .when(lambda history: opened(TICKET))
        .then(
            like(
                tk.TicketOpened,
                originator_id=TICKET,
                originator_version=1,
                channel=tk.Channel.EMAIL,
                impact=Level.MEDIUM,
                urgency=Level.HIGH,
                requester_id="requester:rita",
            ),
            like(
                tk.TicketTriaged,
                originator_id=TICKET,
                originator_version=2,
                matrix_priority=Priority.P2,
                priority=Priority.P2,
                override_reason=None,
            ),
        )
    )
    t = ticket_of(events)
    assert (t.version, t.lifecycle, t.priority, t.opened_at) == (
        2,
        tk.Lifecycle.NEW,
        Priority.P2,
        T0,
    )


def triage(
    priority: Priority | None, reason: str | None
) -> Callable[[Sequence[DomainEvent]], list[DomainEvent]]:
    def decide(history: Sequence[DomainEvent]) -> list[DomainEvent]:
        t = ticket_of(history)
        return tk.triage(t, None, meta(9), MATRIX, Level.HIGH, Level.LOW, priority, reason)

    return decide


def test_a_priority_override_needs_a_reason() -> None:
    # high impact, low urgency is P3 in the default matrix.
    given(opened(TICKET)).when(triage(Priority.P1, None)).then_raises(
        RuleViolationError, match="P1 differs from the matrix .P3.*needs a reason"
    )
    given(opened(TICKET)).when(triage(Priority.P1, "")).then_raises(RuleViolationError)


def test_a_priority_override_with_a_reason_is_recorded() -> None:
    events = (
        given(opened(TICKET))
        .when(triage(Priority.P1, "CEO's laptop"))
        .then(
            like(
                tk.TicketTriaged,
                matrix_priority=Priority.P3,
                priority=Priority.P1,
                override_reason="CEO's laptop",
            )
        )
    )
    t = ticket_of(opened(TICKET) + events)
    assert (t.priority, t.priority_override_reason) == (Priority.P1, "CEO's laptop")


def test_naming_the_matrix_priority_is_no_override() -> None:
    given(opened(TICKET)).when(triage(Priority.P3, "just because")).then(
        like(tk.TicketTriaged, priority=Priority.P3, override_reason=None)
    )


def test_a_retriage_without_override_clears_the_previous_override() -> None:
    history = opened(TICKET) + triage(Priority.P1, "CEO's laptop")(opened(TICKET))
    events = (
        given(history)
        .when(triage(None, None))
        .then(like(tk.TicketTriaged, priority=Priority.P3, override_reason=None))
    )
    assert ticket_of(history + events).priority_override_reason is None


# --- comments ----------------------------------------------------------------------


def test_a_public_agent_comment_is_the_first_response_but_internal_ones_are_not() -> None:
    def comment(visibility: tk.Visibility, role: str, minutes: int) -> list[DomainEvent]:
        return tk.comment(ticket_of(history), None, meta(minutes), COMMENT, "hi", visibility, role)

    history = opened(TICKET)
    history += comment("internal", "agent", 5)
    history += comment("public", "requester", 6)
    assert ticket_of(history).first_response_at is None
    history += comment("public", "agent", 7)
    assert ticket_of(history).first_response_at == T0 + timedelta(minutes=7)
    assert ticket_of(history).comment_count == 3


# --- pending, resolution, reopening -------------------------------------------------------


def test_pending_records_its_reason_and_resuming_clears_it() -> None:
    pending = ticket_of(history_in("pending"))
    assert (pending.pending_reason, pending.waiting_on) == ("awaiting logs", "customer")
    resumed = then_do(history_in("pending"), lambda t, a, m: tk.resume(t, a, m, None))
    assert (ticket_of(resumed).pending_reason, ticket_of(resumed).waiting_on) == (None, None)


@pytest.mark.parametrize("leave", ["cancel", "merge"])
def test_leaving_pending_by_cancel_or_merge_clears_the_wait(leave: str) -> None:
    history = history_in("pending")
    history += on(COMMANDS[leave])(history)
    t = ticket_of(history)
    assert t.lifecycle in (tk.Lifecycle.CANCELLED, tk.Lifecycle.CLOSED)
    assert (t.pending_reason, t.waiting_on) == (None, None)


def test_resolving_a_pending_ticket_records_code_and_note_and_clears_the_wait() -> None:
    history = then_do(history_in("pending"), lambda t, a, m: tk.resolve(t, a, m, "fixed", "ok"))
    t = ticket_of(history)
    assert (t.lifecycle, t.resolution_code, t.resolution_note) == (
        tk.Lifecycle.RESOLVED,
        "fixed",
        "ok",
    )
    assert t.resolved_at == history[-1].occurred_at
    assert (t.pending_reason, t.waiting_on) == (None, None)


def reopen_at(
    after_resolution: timedelta, window: timedelta = WINDOW
) -> Callable[..., list[DomainEvent]]:
    def decide(history: Sequence[DomainEvent]) -> list[DomainEvent]:
        t = ticket_of(history)
        assert t.resolved_at is not None
        at = CommandMeta(
            actor="requester:rita",
            occurred_at=t.resolved_at + after_resolution,
            correlation_id=CORRELATION,
        )
        return tk.reopen(t, None, at, "drops again", window)

    return decide


def test_reopening_within_the_window_returns_the_ticket_to_work() -> None:
    history = history_in("resolved")
    events = (
        given(history).when(reopen_at(WINDOW)).then(like(tk.TicketReopened, reason="drops again"))
    )
    t = ticket_of(history + events)
    assert (t.lifecycle, t.reopen_count, t.resolved_at, t.resolution_code) == (
        tk.Lifecycle.NEW,
        1,
        None,
        None,
    )


def test_reopening_after_the_window_is_refused() -> None:
    given(history_in("resolved")).when(reopen_at(WINDOW + timedelta(seconds=1))).then_raises(
        RuleViolationError, match="reopen window"
    )


def test_the_reopen_window_is_configurable() -> None:
    hour = timedelta(hours=1)
    given(history_in("resolved")).when(reopen_at(2 * hour, window=hour)).then_raises(
        RuleViolationError
    )
    given(history_in("resolved")).when(reopen_at(2 * hour, window=3 * hour)).then(
        like(tk.TicketReopened)
    )


def test_closing_keeps_the_resolution_and_stamps_closed_at() -> None:
    t = ticket_of(history_in("closed"))
    assert t.closed_at is not None and t.resolved_at is not None
    assert t.resolution_code == "fixed"


def test_cancelling_records_the_reason_and_closed_at() -> None:
    t = ticket_of(history_in("cancelled"))
    assert (t.cancel_reason, t.closed_at is not None, t.is_active) == ("sent twice", True, False)


# --- satisfaction -----------------------------------------------------------------


def rate(score: int) -> Callable[[Sequence[DomainEvent]], list[DomainEvent]]:
    return lambda history: tk.rate(ticket_of(history), None, meta(99), score, None)


@pytest.mark.parametrize("status", ["resolved", "closed"])
def test_satisfaction_is_rated_once(status: str) -> None:
    history = history_in(status)
    events = given(history).when(rate(5)).then(like(tk.SatisfactionRated, score=5))
    assert ticket_of(history + events).csat_score == 5
    given(history + events).when(rate(3)).then_raises(
        RuleViolationError, match="already been rated"
    )


def test_a_rating_survives_a_reopening_and_still_counts_once() -> None:
    history = history_in("resolved")
    history += rate(5)(history)
    history = then_do(history, lambda t, a, m: tk.reopen(t, a, m, "again", WINDOW))
    history = then_do(history, tk.start)
    history = then_do(history, lambda t, a, m: tk.resolve(t, a, m, "fixed", "really"))
    given(history).when(rate(4)).then_raises(RuleViolationError)


@pytest.mark.parametrize("score", [0, 6])
def test_a_score_outside_one_to_five_is_invalid(score: int) -> None:
    given(history_in("resolved")).when(rate(score)).then_raises(ValidationError)


def test_a_merged_ticket_is_rated_on_its_target() -> None:
    history = history_in("new")
    history += merge(TICKET, OTHER)(history)
    assert status_of(history) == "closed"
    given(history).when(rate(5)).then_raises(RuleViolationError, match="merged into")


# --- links ------------------------------------------------------------------------


def link(
    relation: tk.Relation, source: UUID = TICKET, other: UUID = OTHER
) -> Callable[[Sequence[DomainEvent]], list[DomainEvent]]:
    def decide(history: Sequence[DomainEvent]) -> list[DomainEvent]:
        t, o = ticket_of(history, source), ticket_of(history, other)
        return tk.link(t, o, None, meta(len(history)), relation)

    return decide


@pytest.mark.parametrize(
    ("relation", "inverse"),
    [
        (tk.Relation.PARENT, tk.Relation.CHILD),
        (tk.Relation.CHILD, tk.Relation.PARENT),
        (tk.Relation.RELATED, tk.Relation.RELATED),
        (tk.Relation.DUPLICATE_OF, tk.Relation.DUPLICATED_BY),
    ],
)
def test_a_link_records_the_inverse_on_the_other_ticket(
    relation: tk.Relation, inverse: tk.Relation
) -> None:
    history = history_in("new")
    events = (
        given(history)
        .when(link(relation))
        .then(
            like(tk.TicketLinked, originator_id=TICKET, relation=relation, other_ticket_id=OTHER),
            like(tk.TicketLinked, originator_id=OTHER, relation=inverse, other_ticket_id=TICKET),
        )
    )
    assert ticket_of(history + events).links == ((relation, OTHER),)
    assert ticket_of(history + events, OTHER).links == ((inverse, TICKET),)


def test_a_ticket_cannot_be_linked_to_itself() -> None:
    given(history_in("new")).when(link(tk.Relation.RELATED, other=TICKET)).then_raises(
        RuleViolationError, match="itself"
    )


def test_a_duplicate_link_is_refused_from_either_side() -> None:
    history = history_in("new")
    history += link(tk.Relation.PARENT)(history)
    given(history).when(link(tk.Relation.PARENT)).then_raises(RuleViolationError, match="already")
    # OTHER already records TICKET as its parent (child of TICKET).
    given(history).when(link(tk.Relation.CHILD, OTHER, TICKET)).then_raises(
        RuleViolationError, match="already"
    )


def test_engine_relations_cannot_be_linked_by_hand() -> None:
    given(history_in("new")).when(link(tk.Relation.MERGED_FROM)).then_raises(
        RuleViolationError, match="recorded by the engine"
    )


def test_a_cancelled_ticket_cannot_be_linked_to() -> None:
    history = history_in("cancelled")
    given(history).when(link(tk.Relation.RELATED, OTHER, TICKET)).then_raises(
        RuleViolationError, match="cancelled"
    )


# --- merges -----------------------------------------------------------------------


def merge(source: UUID, target: UUID) -> Callable[[Sequence[DomainEvent]], list[DomainEvent]]:
    def decide(history: Sequence[DomainEvent]) -> list[DomainEvent]:
        t, o = ticket_of(history, source), ticket_of(history, target)
        return tk.merge(t, o, None, meta(len(history)), "same outage")

    return decide


def test_a_merged_ticket_closes_with_a_pointer_and_the_target_records_it() -> None:
    history = history_in("new")
    events = (
        given(history)
        .when(merge(TICKET, OTHER))
        .then(
            like(tk.TicketMerged, originator_id=TICKET, into_ticket_id=OTHER),
            like(tk.TicketLinked, originator_id=OTHER, relation=tk.Relation.MERGED_FROM),
        )
    )
    t = ticket_of(history + events)
    assert (t.lifecycle, t.merged_into, t.closed_at) == (
        tk.Lifecycle.CLOSED,
        OTHER,
        events[0].occurred_at,
    )
    assert ticket_of(history + events, OTHER).links == ((tk.Relation.MERGED_FROM, TICKET),)


def test_a_ticket_cannot_be_merged_into_itself() -> None:
    given(history_in("new")).when(merge(TICKET, TICKET)).then_raises(
        RuleViolationError, match="itself"
    )


@pytest.mark.parametrize("status", ["resolved", "closed", "cancelled"])
def test_a_ticket_merges_only_into_an_open_ticket(status: str) -> None:
    # TICKET is in ``status``; merge OTHER (new) into it.
    given(history_in(status)).when(merge(OTHER, TICKET)).then_raises(
        RuleViolationError, match=f"is {status}: merge only into an open ticket"
    )


# --- escalation level ---------------------------------------------------------------


def escalate(
    escalation_id: UUID, level: int | None
) -> Callable[[Sequence[DomainEvent]], list[DomainEvent]]:
    def decide(history: Sequence[DomainEvent]) -> list[DomainEvent]:
        return tk.escalated(ticket_of(history), None, meta(len(history)), escalation_id, level)[1]

    return decide


def escalation_closed(escalation_id: UUID) -> Callable[[Sequence[DomainEvent]], list[DomainEvent]]:
    def decide(history: Sequence[DomainEvent]) -> list[DomainEvent]:
        return tk.escalation_closed(ticket_of(history), meta(len(history)), escalation_id)

    return decide


def test_the_escalation_level_defaults_to_one_above_the_current() -> None:
    history = opened(TICKET)
    history += escalate(ESCALATION, None)(history)
    given(history).when(escalate(SECOND_ESCALATION, None)).then(
        like(tk.TicketEscalated, escalation_id=SECOND_ESCALATION, level=2, escalation_level=2)
    )


def test_an_escalation_may_jump_levels_and_repeat_the_current_one() -> None:
    history = opened(TICKET)
    history += escalate(ESCALATION, 3)(history)
    assert ticket_of(history).escalation_level == 3
    given(history).when(escalate(SECOND_ESCALATION, 3)).then(
        like(tk.TicketEscalated, level=3, escalation_level=3)
    )


def test_an_escalation_below_the_current_level_is_refused() -> None:
    history = opened(TICKET)
    history += escalate(ESCALATION, 3)(history)
    given(history).when(escalate(SECOND_ESCALATION, 2)).then_raises(
        RuleViolationError, match="escalated at level 3.*lower level 2"
    )


def test_an_escalation_level_starts_at_one() -> None:
    given(opened(TICKET)).when(escalate(ESCALATION, 0)).then_raises(RuleViolationError)


def test_the_level_holds_while_any_escalation_is_open_and_resets_after_the_last() -> None:
    history = opened(TICKET)
    history += escalate(ESCALATION, 1)(history)
    history += escalate(SECOND_ESCALATION, 2)(history)

    # Closing the higher one keeps the level: another escalation is still open.
    history += (
        given(history)
        .when(escalation_closed(SECOND_ESCALATION))
        .then(like(tk.TicketEscalationClosed, escalation_id=SECOND_ESCALATION, escalation_level=2))
    )
    assert ticket_of(history).open_escalations == ((ESCALATION, 1),)

    # Closing the last one resets it.
    history += (
        given(history)
        .when(escalation_closed(ESCALATION))
        .then(like(tk.TicketEscalationClosed, escalation_id=ESCALATION, escalation_level=0))
    )
    t = ticket_of(history)
    assert (t.escalation_level, t.open_escalations) == (0, ())
