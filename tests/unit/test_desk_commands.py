"""The Desk's use cases on the in-memory store: one atomic append per command,
exactly-once commands, conflicts, conditional commands and the role table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import StoredEvent
from givens import DeskWorld, desk_world

from engine.app.desk import Desk
from engine.app.errors import ConflictError, IdempotencyKeyReusedError, PreconditionFailedError
from engine.app.permissions import Principal
from engine.app.runner import Idempotency
from engine.domain import assignment as asg
from engine.domain import ticket as tk
from engine.domain.base import (
    InvalidTransitionError,
    NotFoundError,
    PermissionDeniedError,
    RuleViolationError,
)
from engine.domain.commands.directory import RegisterAgent, RevokeApiKey
from engine.domain.commands.escalations import AcknowledgeEscalation, ResolveEscalation
from engine.domain.commands.tickets import (
    Accept,
    Assign,
    Cancel,
    Close,
    Comment,
    Escalate,
    Link,
    Merge,
    OpenTicket,
    Pend,
    Resolve,
    Resume,
    Start,
    Triage,
)
from engine.domain.idempotency import idempotency_id
from engine.domain.priority import Level, Priority


@pytest.fixture
def w() -> DeskWorld:
    return desk_world()


class Appends:
    """Records every call to the recorder's insert_events: one list of records per call."""

    def __init__(self, w: DeskWorld, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[list[StoredEvent]] = []
        original = w.app.recorder.insert_events

        def insert_events(stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
            self.calls.append(list(stored_events))
            return original(stored_events, **kwargs)

        monkeypatch.setattr(w.app.recorder, "insert_events", insert_events)

    def only(self) -> list[tuple[str, UUID]]:
        """The one append made so far, as (topic, aggregate id) pairs."""
        assert len(self.calls) == 1, f"expected one append, got {len(self.calls)}"
        return [(s.topic, UUID(str(s.originator_id))) for s in self.calls[0]]

    def last(self) -> list[tuple[str, UUID]]:
        """The latest append, as (topic, aggregate id) pairs."""
        return [(s.topic, UUID(str(s.originator_id))) for s in self.calls[-1]]


@pytest.fixture
def appends(w: DeskWorld, monkeypatch: pytest.MonkeyPatch) -> Callable[[], Appends]:
    return lambda: Appends(w, monkeypatch)


def race(monkeypatch: pytest.MonkeyPatch, w: DeskWorld, competitor: Callable[[], object]) -> None:
    """Make the next command lose a race: ``competitor`` commits after it has loaded
    and decided, just before it saves."""
    original = w.app.save

    def save(*events: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(w.app, "save", original)
        competitor()
        return original(*events, **kwargs)

    monkeypatch.setattr(w.app, "save", save)


def agent_id(p: Principal) -> UUID:
    assert p.agent_id is not None
    return p.agent_id


# --- one command, one atomic append --------------------------------------------------


def test_opening_into_a_queue_is_one_append(w: DeskWorld, appends: Callable[[], Appends]) -> None:
    log = appends()
    t = w.open()
    assert log.only() == [
        ("TicketOpened", t),
        ("TicketTriaged", t),
        ("AssignedToQueue", asg.assignment_id(t)),
    ]


def test_assigning_writes_the_assignment_and_the_agents_load_in_one_append(
    w: DeskWorld, appends: Callable[[], Appends]
) -> None:
    t = w.open()
    log = appends()
    result = w.desk.send(w.lead, Assign(ticket_id=t, agent_id=w.ann.agent_id))

    assert log.only() == [
        ("AssignedToAgent", asg.assignment_id(t)),
        ("AgentTookTicket", agent_id(w.ann)),
    ]
    assert result.position == w.head()
    assert w.app.aggregates.agent(agent_id(w.ann)).tickets == {t}


def test_reassigning_moves_the_load_between_agents_in_one_append(
    w: DeskWorld, appends: Callable[[], Appends]
) -> None:
    t = w.open()
    w.desk.send(w.lead, Assign(ticket_id=t, agent_id=w.ann.agent_id))
    log = appends()
    w.desk.send(
        w.lead, Assign(ticket_id=t, queue="network", agent_id=w.bo.agent_id, reason="Bo knows VPNs")
    )

    assert log.only() == [
        ("AssignedToQueue", asg.assignment_id(t)),
        ("Reassigned", asg.assignment_id(t)),
        ("AgentDroppedTicket", agent_id(w.ann)),
        ("AgentTookTicket", agent_id(w.bo)),
    ]
    assert (
        w.app.aggregates.agent(agent_id(w.ann)).load,
        w.app.aggregates.agent(agent_id(w.bo)).load,
    ) == (0, 1)


def test_linking_writes_both_tickets_in_one_append(
    w: DeskWorld, appends: Callable[[], Appends]
) -> None:
    t, other = w.open(), w.open(w.sam)
    log = appends()
    w.desk.send(w.lead, Link(ticket_id=t, other_ticket_id=other, relation=tk.Relation.PARENT))
    assert log.only() == [("TicketLinked", t), ("TicketLinked", other)]


def test_escalating_writes_the_ticket_and_the_escalation_in_one_append(
    w: DeskWorld, appends: Callable[[], Appends]
) -> None:
    t = w.open()
    log = appends()
    e = uuid4()
    result = w.desk.send(
        w.lead,
        Escalate(
            ticket_id=t,
            escalation_id=e,
            kind="hierarchical",
            target_type="manager",
            target="Head of IT",
            reason="VIP",
        ),
    )
    assert log.only() == [("TicketEscalated", t), ("EscalationRaised", e)]
    assert (result.aggregate_id, result.status_code, result.extra["level"]) == (e, 201, 1)


def _resolve(w: DeskWorld, t: UUID) -> None:
    w.desk.send(w.lead, Assign(ticket_id=t, agent_id=w.ann.agent_id))
    w.desk.send(w.ann, Start(ticket_id=t))
    w.desk.send(w.ann, Resolve(ticket_id=t, resolution_code="fixed", note="done"))


@pytest.mark.parametrize(
    ("end", "why"),
    [
        pytest.param(
            lambda w, t: w.desk.send(w.rita, Cancel(ticket_id=t, reason="not needed")),
            "cancelled",
            id="cancel",
        ),
        pytest.param(
            lambda w, t: w.desk.send(w.lead, Merge(ticket_id=t, into_ticket_id=w.open(w.sam))),
            "merged",
            id="merge",
        ),
        pytest.param(
            lambda w, t: (_resolve(w, t), w.desk.send(w.lead, Close(ticket_id=t))),
            "closed",
            id="close",
        ),
    ],
)
def test_ending_a_ticket_withdraws_its_open_escalations_in_the_same_append(
    w: DeskWorld, appends: Callable[[], Appends], end: Callable[..., object], why: str
) -> None:
    t = w.open()
    vendor, manager, done = uuid4(), uuid4(), uuid4()
    w.desk.send(
        w.lead,
        Escalate(
            ticket_id=t,
            escalation_id=vendor,
            kind="functional",
            target_type="vendor",
            target="Acme",
            reason="tunnel",
        ),
    )
    w.desk.send(
        w.lead,
        Escalate(
            ticket_id=t,
            escalation_id=manager,
            kind="hierarchical",
            target_type="manager",
            target="Head of IT",
            reason="VIP",
        ),
    )
    w.desk.send(
        w.lead,
        Escalate(
            ticket_id=t,
            escalation_id=done,
            kind="functional",
            target_type="queue",
            target="network",
            reason="routing",
        ),
    )
    w.desk.send(w.lead, AcknowledgeEscalation(escalation_id=vendor))
    w.desk.send(w.lead, ResolveEscalation(escalation_id=done, note="routes fixed"))
    log = appends()
    end(w, t)
    ending = log.last()
    withdrawn = [a for type_name, a in ending if type_name == "EscalationWithdrawn"]
    assert withdrawn == [vendor, manager]
    assert [a for type_name, a in ending if type_name == "TicketEscalationClosed"] == [t, t]
    for escalation in (vendor, manager):
        assert w.app.aggregates.escalation(escalation).status == "withdrawn"
    assert w.app.aggregates.escalation(done).status == "resolved"
    ticket = w.app.aggregates.ticket(t)
    assert (ticket.open_escalations, ticket.escalation_level) == ((), 0)
    reasons = [s.state for s in log.calls[-1] if s.topic == "EscalationWithdrawn"]
    assert all(f"ticket {why}".encode() in state for state in reasons)


@pytest.mark.parametrize(
    "refused",
    [
        # Bo (capacity 1) already holds a ticket.
        pytest.param(
            lambda w, t: w.desk.send(w.lead, Assign(ticket_id=t, agent_id=w.bo.agent_id)),
            id="capacity",
        ),
        # Ann is not in the network queue.
        pytest.param(
            lambda w, t: w.desk.send(
                w.lead, Assign(ticket_id=t, queue="network", agent_id=w.ann.agent_id)
            ),
            id="membership",
        ),
        pytest.param(
            lambda w, t: w.desk.send(w.lead, Merge(ticket_id=t, into_ticket_id=t)),
            id="merge-into-self",
        ),
        pytest.param(
            lambda w, t: w.desk.send(
                w.lead,
                Escalate(
                    ticket_id=t,
                    kind="hierarchical",
                    target_type="queue",
                    target="network",
                    reason="x",
                ),
            ),
            id="bad-escalation-target",
        ),
        pytest.param(
            lambda w, t: w.desk.send(w.lead, Assign(ticket_id=t, queue="no-such-queue")),
            id="unknown-queue",
        ),
    ],
)
def test_a_refused_decision_records_nothing(
    w: DeskWorld, appends: Callable[[], Appends], refused: Callable[[DeskWorld, UUID], object]
) -> None:
    w.desk.send(w.lead, Assign(ticket_id=w.open(), agent_id=w.bo.agent_id))
    t = w.open()
    head, log = w.head(), appends()
    with pytest.raises((RuleViolationError, NotFoundError)):
        refused(w, t)
    assert (w.head(), log.calls) == (head, [])


def test_a_conflict_on_one_aggregate_records_none_of_the_commands_events(
    w: DeskWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    t, elsewhere = w.open(), w.open(w.sam)
    # While the lead assigns t to Ann, another desk gives Ann another ticket first:
    # only Ann's stream conflicts, and the assignment of t must not be recorded either.
    rival = Desk(w.app, w.clock)
    race(
        monkeypatch,
        w,
        lambda: rival.send(w.lead, Assign(ticket_id=elsewhere, agent_id=w.ann.agent_id)),
    )
    with pytest.raises(ConflictError, match="reload and retry"):
        w.desk.send(w.lead, Assign(ticket_id=t, agent_id=w.ann.agent_id))

    assert w.app.aggregates.assignment(t).agent_id is None
    assert w.app.aggregates.agent(agent_id(w.ann)).tickets == {elsewhere}


def test_racing_assignments_cannot_exceed_capacity(
    w: DeskWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = w.open(), w.open(w.sam)
    rival = Desk(w.app, w.clock)
    # Both desks see Bo (capacity 1) free; only one assignment can be recorded.
    race(
        monkeypatch, w, lambda: rival.send(w.lead, Assign(ticket_id=first, agent_id=w.bo.agent_id))
    )
    with pytest.raises(ConflictError):
        w.desk.send(w.lead, Assign(ticket_id=second, agent_id=w.bo.agent_id))
    bo = w.app.aggregates.agent(agent_id(w.bo))
    assert (bo.load, bo.capacity) == (1, 1)

    # Retried on fresh state, capacity refuses it.
    with pytest.raises(RuleViolationError, match="capacity"):
        w.desk.send(w.lead, Assign(ticket_id=second, agent_id=w.bo.agent_id))


def test_a_concurrent_change_to_the_ticket_is_a_conflict(
    w: DeskWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = w.open()
    head = w.head()
    race(
        monkeypatch,
        w,
        lambda: Desk(w.app, w.clock).send(w.rita, Comment(ticket_id=t, body="hello?")),
    )
    with pytest.raises(ConflictError):
        w.desk.send(w.lead, Triage(ticket_id=t, impact=Level.HIGH, urgency=Level.HIGH))
    # Only the rival's comment was recorded.
    assert w.head() == head + 1
    assert w.app.aggregates.ticket(t).priority == Priority.P3


# --- exactly-once commands ---------------------------------------------------------------


def idem(
    key: str = "k-1", body: bytes = b'{"reason":"sent twice"}', path: str = "/tickets/x/cancel"
) -> Idempotency:
    return Idempotency(key, "POST", path, body)


def test_a_retry_returns_the_first_result_and_records_nothing(
    w: DeskWorld, appends: Callable[[], Appends]
) -> None:
    t = w.open()
    first = w.desk.send(w.rita, Cancel(ticket_id=t, reason="sent twice"), idem=idem())
    head, log = w.head(), appends()

    again = w.desk.send(w.rita, Cancel(ticket_id=t, reason="sent twice"), idem=idem())

    assert again == first.model_copy(update={"replayed": True})
    assert (w.head(), log.calls) == (head, [])


def test_the_first_result_is_recorded_with_the_commands_events(
    w: DeskWorld, appends: Callable[[], Appends]
) -> None:
    t = w.open()
    log = appends()
    w.desk.send(w.rita, Cancel(ticket_id=t, reason="sent twice"), idem=idem())
    assert log.only() == [
        ("TicketCancelled", t),
        ("CommandProcessed", idempotency_id(w.rita.id, "k-1")),
    ]


def test_a_retry_after_other_commands_still_returns_the_first_result(w: DeskWorld) -> None:
    t = w.open()
    first = w.desk.send(w.rita, Cancel(ticket_id=t, reason="sent twice"), idem=idem())
    w.open(w.sam)
    again = w.desk.send(w.rita, Cancel(ticket_id=t, reason="sent twice"), idem=idem())

    assert again.model_dump(exclude={"position", "replayed"}) == first.model_dump(
        exclude={"position", "replayed"}
    )
    # The position only ever moves forward, so read-your-writes stays safe.
    assert again.replayed and again.position >= first.position


def test_a_reused_key_with_another_body_is_refused(w: DeskWorld) -> None:
    t = w.open()
    w.desk.send(w.rita, Cancel(ticket_id=t, reason="sent twice"), idem=idem())
    head = w.head()
    with pytest.raises(IdempotencyKeyReusedError, match="'k-1' was used for a different request"):
        w.desk.send(
            w.rita,
            Cancel(ticket_id=t, reason="another reason"),
            idem=idem(body=b'{"reason":"another reason"}'),
        )
    with pytest.raises(IdempotencyKeyReusedError):
        w.desk.send(w.rita, Comment(ticket_id=t, body="hi"), idem=idem(path="/tickets/x/comments"))
    assert w.head() == head


def test_keys_belong_to_their_principal(w: DeskWorld) -> None:
    mine, theirs = w.open(), w.open(w.sam)
    w.desk.send(w.rita, Cancel(ticket_id=mine, reason="sent twice"), idem=idem())
    result = w.desk.send(w.sam, Cancel(ticket_id=theirs, reason="sent twice"), idem=idem())
    assert not result.replayed
    assert w.status(theirs) == "cancelled"


def test_a_refused_command_is_not_remembered(w: DeskWorld) -> None:
    t = w.open()
    w.desk.send(w.lead, Assign(ticket_id=t, agent_id=w.ann.agent_id))
    with pytest.raises(InvalidTransitionError):
        w.desk.send(w.ann, Resume(ticket_id=t), idem=idem("k-2", b"{}"))
    w.desk.send(w.ann, Start(ticket_id=t))
    w.desk.send(w.ann, Pend(ticket_id=t, reason="awaiting logs", waiting_on="customer"))
    # The same key, sent again, now does the work.
    assert not w.desk.send(w.ann, Resume(ticket_id=t), idem=idem("k-2", b"{}")).replayed
    assert w.status(t) == "in_progress"


def test_racing_first_tries_with_one_key_record_once(
    w: DeskWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = w.open()
    rival = Desk(w.app, w.clock)
    first: list[Any] = []
    race(
        monkeypatch,
        w,
        lambda: first.append(
            rival.send(w.rita, Cancel(ticket_id=t, reason="sent twice"), idem=idem())
        ),
    )
    head_before = w.head()

    result = w.desk.send(w.rita, Cancel(ticket_id=t, reason="sent twice"), idem=idem())

    # The loser answers with the winner's result.
    assert result == first[0].model_copy(update={"replayed": True})
    assert w.head() == head_before + 2  # the rival's TicketCancelled and CommandProcessed


def test_an_opening_retried_opens_one_ticket(w: DeskWorld) -> None:
    cmd = OpenTicket(
        title="t",
        description="d",
        requester_id=w.rita.id,
        channel=tk.Channel.EMAIL,
        category="c",
        impact=Level.LOW,
        urgency=Level.LOW,
    )
    first = w.desk.send(w.rita, cmd, idem=idem("k-open", b"{...}", "/tickets"))
    head = w.head()
    retry = cmd.model_copy(update={"ticket_id": uuid4()})  # a retrying client may mint a new id
    again = w.desk.send(w.rita, retry, idem=idem("k-open", b"{...}", "/tickets"))
    assert (again.aggregate_id, again.replayed, w.head()) == (first.aggregate_id, True, head)


def test_a_replayed_registration_does_not_repeat_the_api_key(w: DeskWorld) -> None:
    key = idem("k-agent", b'{"name":"Cy"}', "/agents")
    first = w.desk.send(
        w.admin,
        RegisterAgent(agent_id=uuid4(), name="Cy", role="agent", queues=["network"], capacity=2),
        idem=key,
    )
    again = w.desk.send(
        w.admin,
        RegisterAgent(agent_id=uuid4(), name="Cy", role="agent", queues=["network"], capacity=2),
        idem=key,
    )
    assert first.extra["api_key"].startswith("tk_")
    assert "api_key" not in again.extra
    assert again.aggregate_id == first.aggregate_id


# --- conditional commands --------------------------------------------------------------


def test_if_match_accepts_the_current_etag_or_a_star(w: DeskWorld) -> None:
    t = w.open()
    etag = w.desk.queries.ticket(w.lead, t).etag
    result = w.desk.send(w.lead, Comment(ticket_id=t, body="on it", internal=True), if_match=etag)
    assert result.etag != etag
    w.desk.send(w.lead, Comment(ticket_id=t, body="still on it", internal=True), if_match="*")


def test_a_stale_if_match_fails_and_records_nothing(w: DeskWorld) -> None:
    t = w.open()
    stale = w.desk.queries.ticket(w.lead, t).etag
    w.desk.send(w.lead, Assign(ticket_id=t, agent_id=w.ann.agent_id))  # moves only the assignment
    head = w.head()
    with pytest.raises(PreconditionFailedError, match=f"If-Match {stale} does not match"):
        w.desk.send(w.ann, Start(ticket_id=t), if_match=stale)
    assert w.head() == head


def test_a_stale_if_match_on_an_escalation_fails(w: DeskWorld) -> None:
    t, e = w.open(), uuid4()
    w.desk.send(
        w.lead,
        Escalate(
            ticket_id=t,
            escalation_id=e,
            kind="functional",
            target_type="vendor",
            target="Acme",
            reason="tunnel",
        ),
    )
    w.desk.send(w.lead, AcknowledgeEscalation(escalation_id=e), if_match='"1"')
    head = w.head()
    with pytest.raises(PreconditionFailedError):
        w.desk.send(w.lead, ResolveEscalation(escalation_id=e, note="patched"), if_match='"1"')
    assert w.head() == head


# --- the role table, through the desk ---------------------------------------------------


def test_requesters_see_and_act_only_on_their_own_tickets(w: DeskWorld) -> None:
    t = w.open(w.rita)
    head = w.head()
    for attempt in (
        lambda: w.desk.queries.ticket(w.sam, t),
        lambda: w.desk.send(w.sam, Comment(ticket_id=t, body="me too")),
        lambda: w.desk.send(w.sam, Cancel(ticket_id=t, reason="not mine")),
    ):
        with pytest.raises(PermissionDeniedError, match="own tickets"):
            attempt()
    assert w.head() == head
    assert w.desk.queries.ticket(w.rita, t).requester_id == w.rita.id


def test_a_requester_opens_tickets_only_for_themselves(w: DeskWorld) -> None:
    cmd = OpenTicket(
        title="t",
        description="d",
        requester_id=w.sam.id,
        channel=tk.Channel.WEB,
        category="c",
        impact=Level.LOW,
        urgency=Level.LOW,
    )
    t = w.desk.send(w.rita, cmd).aggregate_id
    assert w.app.aggregates.ticket(t).requester_id == w.rita.id


def test_requesters_cannot_comment_internally(w: DeskWorld) -> None:
    t = w.open(w.rita)
    head = w.head()
    with pytest.raises(PermissionDeniedError, match="comment internal"):
        w.desk.send(w.rita, Comment(ticket_id=t, body="psst", internal=True))
    assert w.head() == head
    w.desk.send(w.rita, Comment(ticket_id=t, body="any news?"))


def test_agents_work_only_tickets_assigned_to_them(w: DeskWorld) -> None:
    t = w.open()
    w.desk.send(w.lead, Assign(ticket_id=t, agent_id=w.ann.agent_id))
    head = w.head()
    with pytest.raises(PermissionDeniedError, match="only tickets assigned to them"):
        w.desk.send(w.bo, Accept(ticket_id=t))
    with pytest.raises(PermissionDeniedError, match="only tickets assigned to them"):
        w.desk.send(w.bo, Start(ticket_id=t))
    assert w.head() == head
    w.desk.send(w.ann, Accept(ticket_id=t))
    w.desk.send(w.ann, Start(ticket_id=t))
    with pytest.raises(PermissionDeniedError):
        w.desk.send(w.bo, Resolve(ticket_id=t, resolution_code="fixed", note="x"))
    w.desk.send(w.ann, Resolve(ticket_id=t, resolution_code="fixed", note="x"))


def test_only_leads_override_priority(w: DeskWorld) -> None:
    t = w.open()
    head = w.head()
    with pytest.raises(PermissionDeniedError, match="override priority"):
        w.desk.send(
            w.ann,
            Triage(
                ticket_id=t, impact=Level.LOW, urgency=Level.LOW, priority=Priority.P1, reason="VIP"
            ),
        )
    assert w.head() == head
    w.desk.send(
        w.ann, Triage(ticket_id=t, impact=Level.LOW, urgency=Level.LOW)
    )  # the matrix's own priority
    w.desk.send(
        w.lead,
        Triage(
            ticket_id=t, impact=Level.LOW, urgency=Level.LOW, priority=Priority.P1, reason="VIP"
        ),
    )
    assert w.desk.queries.ticket(w.ann, t).priority == "P1"


def test_only_leads_override_capacity(w: DeskWorld) -> None:
    w.desk.send(w.lead, Assign(ticket_id=w.open(), agent_id=w.bo.agent_id))
    t = w.open()
    head = w.head()
    with pytest.raises(PermissionDeniedError, match="override capacity"):
        w.desk.send(
            w.bo,
            Assign(ticket_id=t, agent_id=w.bo.agent_id, override_capacity_reason="I can take it"),
        )
    assert w.head() == head
    w.desk.send(
        w.lead,
        Assign(
            ticket_id=t, agent_id=w.bo.agent_id, override_capacity_reason="only Bo knows the VPN"
        ),
    )
    bo = w.app.aggregates.agent(agent_id(w.bo))
    assert (bo.load, bo.capacity) == (2, 1)


def test_agents_assign_only_themselves(w: DeskWorld) -> None:
    t = w.open()
    with pytest.raises(PermissionDeniedError, match="assign others"):
        w.desk.send(w.ann, Assign(ticket_id=t, agent_id=w.bo.agent_id))
    w.desk.send(w.ann, Assign(ticket_id=t, agent_id=w.ann.agent_id))
    assert w.status(t) == "assigned"


def test_the_actor_of_every_event_is_the_principal(w: DeskWorld) -> None:
    t = w.open(w.rita)
    w.desk.send(w.lead, Assign(ticket_id=t, agent_id=w.ann.agent_id))
    w.desk.send(w.ann, Start(ticket_id=t))
    actors = [e.actor for e in w.app.events.get(t)]  # type: ignore[attr-defined]
    assert actors == [w.rita.id, w.rita.id, w.ann.id]
    assert {e.actor for e in w.app.events.get(asg.assignment_id(t))} == {w.rita.id, w.lead.id}  # type: ignore[attr-defined]


def test_an_accepted_ticket_no_longer_offers_accept(w: DeskWorld) -> None:
    t = w.open()
    w.desk.send(w.lead, Assign(ticket_id=t, agent_id=w.ann.agent_id))
    w.desk.send(w.ann, Accept(ticket_id=t))
    with pytest.raises(InvalidTransitionError):
        w.desk.send(w.ann, Accept(ticket_id=t))
    assert "accept" not in w.desk.queries.ticket(w.ann, t).allowed_actions


# --- queries -----------------------------------------------------------------------


def test_details_show_the_state_now_and_at_a_version(w: DeskWorld) -> None:
    t = w.open(impact=Level.HIGH, urgency=Level.HIGH)
    w.desk.send(w.lead, Assign(ticket_id=t, agent_id=w.ann.agent_id))
    w.desk.send(
        w.lead,
        Escalate(
            ticket_id=t,
            kind="hierarchical",
            target_type="manager",
            target="Head of IT",
            reason="VIP",
            level=2,
        ),
    )
    now = w.desk.queries.ticket(w.lead, t)
    assert (
        now.status,
        now.priority,
        now.queue,
        now.assignee_id,
        now.escalation_level,
        now.version,
    ) == (
        "assigned",
        "P1",
        "service-desk",
        w.ann.agent_id,
        2,
        3,
    )
    then = w.desk.queries.ticket(w.lead, t, version=2)
    assert (then.version, then.escalation_level) == (2, 0)


def test_an_unknown_ticket_is_not_found(w: DeskWorld) -> None:
    with pytest.raises(NotFoundError):
        w.desk.send(w.lead, Start(ticket_id=uuid4()))


def test_an_id_of_another_kind_of_aggregate_is_not_found(w: DeskWorld) -> None:
    # A ticket's id asked for as an escalation, agent or API key (and an agent's as a
    # ticket) is a 404, not a fold of the wrong stream.
    t = w.open()
    for lookup in (
        lambda: w.app.aggregates.escalation(t),
        lambda: w.app.aggregates.agent(t),
        lambda: w.desk.send(w.admin, RevokeApiKey(credential_id=t, reason="wrong id")),
        lambda: w.desk.send(w.lead, Comment(ticket_id=w.ann.agent_id, body="hello")),
    ):
        with pytest.raises(NotFoundError):
            lookup()
