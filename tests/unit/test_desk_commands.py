"""The Desk's use cases on the in-memory store: one atomic append per command,
exactly-once commands, conflicts, conditional commands and the role table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import StoredEvent
from givens import DeskWorld, desk_world

from engine.app.application import (
    ConflictError,
    Idempotency,
    IdempotencyKeyReusedError,
    PreconditionFailedError,
)
from engine.app.desk import Desk
from engine.app.permissions import Principal
from engine.domain import assignment as asg
from engine.domain import ticket as tk
from engine.domain.base import (
    InvalidTransitionError,
    NotFoundError,
    PermissionDeniedError,
    RuleViolationError,
)
from engine.domain.directory import Role
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
    result = w.desk.assign(w.lead, t, None, w.ann.agent_id, None, None)

    assert log.only() == [
        ("AssignedToAgent", asg.assignment_id(t)),
        ("AgentTookTicket", agent_id(w.ann)),
    ]
    assert result.position == w.head()
    assert w.app.agent(agent_id(w.ann)).tickets == {t}


def test_reassigning_moves_the_load_between_agents_in_one_append(
    w: DeskWorld, appends: Callable[[], Appends]
) -> None:
    t = w.open()
    w.desk.assign(w.lead, t, None, w.ann.agent_id, None, None)
    log = appends()
    w.desk.assign(w.lead, t, "network", w.bo.agent_id, "Bo knows VPNs", None)

    assert log.only() == [
        ("AssignedToQueue", asg.assignment_id(t)),
        ("Reassigned", asg.assignment_id(t)),
        ("AgentDroppedTicket", agent_id(w.ann)),
        ("AgentTookTicket", agent_id(w.bo)),
    ]
    assert (w.app.agent(agent_id(w.ann)).load, w.app.agent(agent_id(w.bo)).load) == (0, 1)


def test_linking_writes_both_tickets_in_one_append(
    w: DeskWorld, appends: Callable[[], Appends]
) -> None:
    t, other = w.open(), w.open(w.sam)
    log = appends()
    w.desk.link(w.lead, t, other, tk.Relation.PARENT)
    assert log.only() == [("TicketLinked", t), ("TicketLinked", other)]


def test_escalating_writes_the_ticket_and_the_escalation_in_one_append(
    w: DeskWorld, appends: Callable[[], Appends]
) -> None:
    t = w.open()
    log = appends()
    e = uuid4()
    result = w.desk.escalate(w.lead, t, e, "hierarchical", "manager", "Head of IT", "VIP", None)
    assert log.only() == [("TicketEscalated", t), ("EscalationRaised", e)]
    assert (result.aggregate_id, result.status_code, result.extra["level"]) == (e, 201, 1)


def _resolve(w: DeskWorld, t: UUID) -> None:
    w.desk.assign(w.lead, t, None, w.ann.agent_id, None, None)
    w.desk.start(w.ann, t)
    w.desk.resolve(w.ann, t, "fixed", "done")


@pytest.mark.parametrize(
    ("end", "why"),
    [
        pytest.param(lambda w, t: w.desk.cancel(w.rita, t, "not needed"), "cancelled", id="cancel"),
        pytest.param(
            lambda w, t: w.desk.merge(w.lead, t, w.open(w.sam), None), "merged", id="merge"
        ),
        pytest.param(
            lambda w, t: (_resolve(w, t), w.desk.close(w.lead, t, None)), "closed", id="close"
        ),
    ],
)
def test_ending_a_ticket_withdraws_its_open_escalations_in_the_same_append(
    w: DeskWorld, appends: Callable[[], Appends], end: Callable[..., object], why: str
) -> None:
    t = w.open()
    vendor, manager, done = uuid4(), uuid4(), uuid4()
    w.desk.escalate(w.lead, t, vendor, "functional", "vendor", "Acme", "tunnel", None)
    w.desk.escalate(w.lead, t, manager, "hierarchical", "manager", "Head of IT", "VIP", None)
    w.desk.escalate(w.lead, t, done, "functional", "queue", "network", "routing", None)
    w.desk.acknowledge_escalation(w.lead, vendor, None)
    w.desk.resolve_escalation(w.lead, done, "routes fixed")
    log = appends()
    end(w, t)
    ending = log.last()
    withdrawn = [a for type_name, a in ending if type_name == "EscalationWithdrawn"]
    assert withdrawn == [vendor, manager]
    assert [a for type_name, a in ending if type_name == "TicketEscalationClosed"] == [t, t]
    for escalation in (vendor, manager):
        assert w.app.escalation(escalation).status == "withdrawn"
    assert w.app.escalation(done).status == "resolved"
    ticket = w.app.ticket(t)
    assert (ticket.open_escalations, ticket.escalation_level) == ((), 0)
    reasons = [s.state for s in log.calls[-1] if s.topic == "EscalationWithdrawn"]
    assert all(f"ticket {why}".encode() in state for state in reasons)


@pytest.mark.parametrize(
    "refused",
    [
        # Bo (capacity 1) already holds a ticket.
        pytest.param(
            lambda w, t: w.desk.assign(w.lead, t, None, w.bo.agent_id, None, None), id="capacity"
        ),
        # Ann is not in the network queue.
        pytest.param(
            lambda w, t: w.desk.assign(w.lead, t, "network", w.ann.agent_id, None, None),
            id="membership",
        ),
        pytest.param(lambda w, t: w.desk.merge(w.lead, t, t, None), id="merge-into-self"),
        pytest.param(
            lambda w, t: w.desk.escalate(
                w.lead, t, uuid4(), "hierarchical", "queue", "network", "x", None
            ),
            id="bad-escalation-target",
        ),
        pytest.param(
            lambda w, t: w.desk.assign(w.lead, t, "no-such-queue", None, None, None),
            id="unknown-queue",
        ),
    ],
)
def test_a_refused_decision_records_nothing(
    w: DeskWorld, appends: Callable[[], Appends], refused: Callable[[DeskWorld, UUID], object]
) -> None:
    w.desk.assign(w.lead, w.open(), None, w.bo.agent_id, None, None)
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
    race(monkeypatch, w, lambda: rival.assign(w.lead, elsewhere, None, w.ann.agent_id, None, None))
    with pytest.raises(ConflictError, match="reload and retry"):
        w.desk.assign(w.lead, t, None, w.ann.agent_id, None, None)

    assert w.app.assignment(t).agent_id is None
    assert w.app.agent(agent_id(w.ann)).tickets == {elsewhere}


def test_racing_assignments_cannot_exceed_capacity(
    w: DeskWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = w.open(), w.open(w.sam)
    rival = Desk(w.app, w.clock)
    # Both desks see Bo (capacity 1) free; only one assignment can be recorded.
    race(monkeypatch, w, lambda: rival.assign(w.lead, first, None, w.bo.agent_id, None, None))
    with pytest.raises(ConflictError):
        w.desk.assign(w.lead, second, None, w.bo.agent_id, None, None)
    bo = w.app.agent(agent_id(w.bo))
    assert (bo.load, bo.capacity) == (1, 1)

    # Retried on fresh state, capacity refuses it.
    with pytest.raises(RuleViolationError, match="capacity"):
        w.desk.assign(w.lead, second, None, w.bo.agent_id, None, None)


def test_a_concurrent_change_to_the_ticket_is_a_conflict(
    w: DeskWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = w.open()
    head = w.head()
    race(monkeypatch, w, lambda: Desk(w.app, w.clock).comment(w.rita, t, uuid4(), "hello?", False))
    with pytest.raises(ConflictError):
        w.desk.triage(w.lead, t, Level.HIGH, Level.HIGH, None, None)
    # Only the rival's comment was recorded.
    assert w.head() == head + 1
    assert w.app.ticket(t).priority == Priority.P3


# --- exactly-once commands ---------------------------------------------------------------


def idem(
    key: str = "k-1", body: bytes = b'{"reason":"sent twice"}', path: str = "/tickets/x/cancel"
) -> Idempotency:
    return Idempotency(key, "POST", path, body)


def test_a_retry_returns_the_first_result_and_records_nothing(
    w: DeskWorld, appends: Callable[[], Appends]
) -> None:
    t = w.open()
    first = w.desk.cancel(w.rita, t, "sent twice", idem=idem())
    head, log = w.head(), appends()

    again = w.desk.cancel(w.rita, t, "sent twice", idem=idem())

    assert again == first.model_copy(update={"replayed": True})
    assert (w.head(), log.calls) == (head, [])


def test_the_first_result_is_recorded_with_the_commands_events(
    w: DeskWorld, appends: Callable[[], Appends]
) -> None:
    t = w.open()
    log = appends()
    w.desk.cancel(w.rita, t, "sent twice", idem=idem())
    assert log.only() == [
        ("TicketCancelled", t),
        ("CommandProcessed", idempotency_id(w.rita.id, "k-1")),
    ]


def test_a_retry_after_other_commands_still_returns_the_first_result(w: DeskWorld) -> None:
    t = w.open()
    first = w.desk.cancel(w.rita, t, "sent twice", idem=idem())
    w.open(w.sam)
    again = w.desk.cancel(w.rita, t, "sent twice", idem=idem())

    assert again.model_dump(exclude={"position", "replayed"}) == first.model_dump(
        exclude={"position", "replayed"}
    )
    # The position only ever moves forward, so read-your-writes stays safe.
    assert again.replayed and again.position >= first.position


def test_a_reused_key_with_another_body_is_refused(w: DeskWorld) -> None:
    t = w.open()
    w.desk.cancel(w.rita, t, "sent twice", idem=idem())
    head = w.head()
    with pytest.raises(IdempotencyKeyReusedError, match="'k-1' was used for a different request"):
        w.desk.cancel(w.rita, t, "another reason", idem=idem(body=b'{"reason":"another reason"}'))
    with pytest.raises(IdempotencyKeyReusedError):
        w.desk.comment(w.rita, t, uuid4(), "hi", False, idem=idem(path="/tickets/x/comments"))
    assert w.head() == head


def test_keys_belong_to_their_principal(w: DeskWorld) -> None:
    mine, theirs = w.open(), w.open(w.sam)
    w.desk.cancel(w.rita, mine, "sent twice", idem=idem())
    result = w.desk.cancel(w.sam, theirs, "sent twice", idem=idem())
    assert not result.replayed
    assert w.status(theirs) == "cancelled"


def test_a_refused_command_is_not_remembered(w: DeskWorld) -> None:
    t = w.open()
    w.desk.assign(w.lead, t, None, w.ann.agent_id, None, None)
    with pytest.raises(InvalidTransitionError):
        w.desk.resume(w.ann, t, None, idem=idem("k-2", b"{}"))
    w.desk.start(w.ann, t)
    w.desk.pend(w.ann, t, "awaiting logs", "customer")
    # The same key, sent again, now does the work.
    assert not w.desk.resume(w.ann, t, None, idem=idem("k-2", b"{}")).replayed
    assert w.status(t) == "in_progress"


def test_racing_first_tries_with_one_key_record_once(
    w: DeskWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = w.open()
    rival = Desk(w.app, w.clock)
    first: list[Any] = []
    race(monkeypatch, w, lambda: first.append(rival.cancel(w.rita, t, "sent twice", idem=idem())))
    head_before = w.head()

    result = w.desk.cancel(w.rita, t, "sent twice", idem=idem())

    # The loser answers with the winner's result.
    assert result == first[0].model_copy(update={"replayed": True})
    assert w.head() == head_before + 2  # the rival's TicketCancelled and CommandProcessed


def test_an_opening_retried_opens_one_ticket(w: DeskWorld) -> None:
    cmd = tk.OpenTicket(
        ticket_id=uuid4(),
        title="t",
        description="d",
        requester_id=w.rita.id,
        channel=tk.Channel.EMAIL,
        category="c",
        impact=Level.LOW,
        urgency=Level.LOW,
    )
    first = w.desk.open_ticket(w.rita, cmd, None, idem("k-open", b"{...}", "/tickets"))
    head = w.head()
    retry = cmd.model_copy(update={"ticket_id": uuid4()})  # a retrying client may mint a new id
    again = w.desk.open_ticket(w.rita, retry, None, idem("k-open", b"{...}", "/tickets"))
    assert (again.aggregate_id, again.replayed, w.head()) == (first.aggregate_id, True, head)


def test_a_replayed_registration_does_not_repeat_the_api_key(w: DeskWorld) -> None:
    key = idem("k-agent", b'{"name":"Cy"}', "/agents")
    first = w.desk.register_agent(w.admin, uuid4(), "Cy", None, Role.AGENT, ["network"], 2, key)
    again = w.desk.register_agent(w.admin, uuid4(), "Cy", None, Role.AGENT, ["network"], 2, key)
    assert first.extra["api_key"].startswith("tk_")
    assert "api_key" not in again.extra
    assert again.aggregate_id == first.aggregate_id


# --- conditional commands --------------------------------------------------------------


def test_if_match_accepts_the_current_etag_or_a_star(w: DeskWorld) -> None:
    t = w.open()
    etag = w.desk.details(w.lead, t).etag
    result = w.desk.comment(w.lead, t, uuid4(), "on it", True, if_match=etag)
    assert result.etag != etag
    w.desk.comment(w.lead, t, uuid4(), "still on it", True, if_match="*")


def test_a_stale_if_match_fails_and_records_nothing(w: DeskWorld) -> None:
    t = w.open()
    stale = w.desk.details(w.lead, t).etag
    w.desk.assign(w.lead, t, None, w.ann.agent_id, None, None)  # moves only the assignment
    head = w.head()
    with pytest.raises(PreconditionFailedError, match=f"If-Match {stale} does not match"):
        w.desk.start(w.ann, t, if_match=stale)
    assert w.head() == head


def test_a_stale_if_match_on_an_escalation_fails(w: DeskWorld) -> None:
    t, e = w.open(), uuid4()
    w.desk.escalate(w.lead, t, e, "functional", "vendor", "Acme", "tunnel", None)
    w.desk.acknowledge_escalation(w.lead, e, None, if_match='"1"')
    head = w.head()
    with pytest.raises(PreconditionFailedError):
        w.desk.resolve_escalation(w.lead, e, "patched", if_match='"1"')
    assert w.head() == head


# --- the role table, through the desk ---------------------------------------------------


def test_requesters_see_and_act_only_on_their_own_tickets(w: DeskWorld) -> None:
    t = w.open(w.rita)
    head = w.head()
    for attempt in (
        lambda: w.desk.details(w.sam, t),
        lambda: w.desk.comment(w.sam, t, uuid4(), "me too", False),
        lambda: w.desk.cancel(w.sam, t, "not mine"),
    ):
        with pytest.raises(PermissionDeniedError, match="own tickets"):
            attempt()
    assert w.head() == head
    assert w.desk.details(w.rita, t).requester_id == w.rita.id


def test_a_requester_opens_tickets_only_for_themselves(w: DeskWorld) -> None:
    cmd = tk.OpenTicket(
        ticket_id=uuid4(),
        title="t",
        description="d",
        requester_id=w.sam.id,
        channel=tk.Channel.WEB,
        category="c",
        impact=Level.LOW,
        urgency=Level.LOW,
    )
    t = w.desk.open_ticket(w.rita, cmd, None).aggregate_id
    assert w.app.ticket(t).requester_id == w.rita.id


def test_requesters_cannot_comment_internally(w: DeskWorld) -> None:
    t = w.open(w.rita)
    head = w.head()
    with pytest.raises(PermissionDeniedError, match="comment internal"):
        w.desk.comment(w.rita, t, uuid4(), "psst", True)
    assert w.head() == head
    w.desk.comment(w.rita, t, uuid4(), "any news?", False)


def test_agents_work_only_tickets_assigned_to_them(w: DeskWorld) -> None:
    t = w.open()
    w.desk.assign(w.lead, t, None, w.ann.agent_id, None, None)
    head = w.head()
    with pytest.raises(PermissionDeniedError, match="only tickets assigned to them"):
        w.desk.accept(w.bo, t)
    with pytest.raises(PermissionDeniedError, match="only tickets assigned to them"):
        w.desk.start(w.bo, t)
    assert w.head() == head
    w.desk.accept(w.ann, t)
    w.desk.start(w.ann, t)
    with pytest.raises(PermissionDeniedError):
        w.desk.resolve(w.bo, t, "fixed", "x")
    w.desk.resolve(w.ann, t, "fixed", "x")


def test_only_leads_override_priority(w: DeskWorld) -> None:
    t = w.open()
    head = w.head()
    with pytest.raises(PermissionDeniedError, match="override priority"):
        w.desk.triage(w.ann, t, Level.LOW, Level.LOW, Priority.P1, "VIP")
    assert w.head() == head
    w.desk.triage(w.ann, t, Level.LOW, Level.LOW, None, None)  # the matrix's own priority
    w.desk.triage(w.lead, t, Level.LOW, Level.LOW, Priority.P1, "VIP")
    assert w.desk.details(w.ann, t).priority == "P1"


def test_only_leads_override_capacity(w: DeskWorld) -> None:
    w.desk.assign(w.lead, w.open(), None, w.bo.agent_id, None, None)
    t = w.open()
    head = w.head()
    with pytest.raises(PermissionDeniedError, match="override capacity"):
        w.desk.assign(w.bo, t, None, w.bo.agent_id, None, "I can take it")
    assert w.head() == head
    w.desk.assign(w.lead, t, None, w.bo.agent_id, None, "only Bo knows the VPN")
    bo = w.app.agent(agent_id(w.bo))
    assert (bo.load, bo.capacity) == (2, 1)


def test_agents_assign_only_themselves(w: DeskWorld) -> None:
    t = w.open()
    with pytest.raises(PermissionDeniedError, match="assign others"):
        w.desk.assign(w.ann, t, None, w.bo.agent_id, None, None)
    w.desk.assign(w.ann, t, None, w.ann.agent_id, None, None)
    assert w.status(t) == "assigned"


def test_the_actor_of_every_event_is_the_principal(w: DeskWorld) -> None:
    t = w.open(w.rita)
    w.desk.assign(w.lead, t, None, w.ann.agent_id, None, None)
    w.desk.start(w.ann, t)
    actors = [e.actor for e in w.app.events.get(t)]  # type: ignore[attr-defined]
    assert actors == [w.rita.id, w.rita.id, w.ann.id]
    assert {e.actor for e in w.app.events.get(asg.assignment_id(t))} == {w.rita.id, w.lead.id}  # type: ignore[attr-defined]


def test_an_accepted_ticket_no_longer_offers_accept(w: DeskWorld) -> None:
    t = w.open()
    w.desk.assign(w.lead, t, None, w.ann.agent_id, None, None)
    w.desk.accept(w.ann, t)
    with pytest.raises(InvalidTransitionError):
        w.desk.accept(w.ann, t)
    assert "accept" not in w.desk.details(w.ann, t).allowed_actions


# --- queries -----------------------------------------------------------------------


def test_details_show_the_state_now_and_at_a_version(w: DeskWorld) -> None:
    t = w.open(impact=Level.HIGH, urgency=Level.HIGH)
    w.desk.assign(w.lead, t, None, w.ann.agent_id, None, None)
    w.desk.escalate(w.lead, t, uuid4(), "hierarchical", "manager", "Head of IT", "VIP", 2)
    now = w.desk.details(w.lead, t)
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
    then = w.desk.details(w.lead, t, version=2)
    assert (then.version, then.escalation_level) == (2, 0)


def test_an_unknown_ticket_is_not_found(w: DeskWorld) -> None:
    with pytest.raises(NotFoundError):
        w.desk.start(w.lead, uuid4())


def test_an_id_of_another_kind_of_aggregate_is_not_found(w: DeskWorld) -> None:
    # A ticket's id asked for as an escalation, agent or API key (and an agent's as a
    # ticket) is a 404, not a fold of the wrong stream.
    t = w.open()
    for lookup in (
        lambda: w.app.escalation(t),
        lambda: w.app.agent(t),
        lambda: w.desk.revoke_key(w.admin, t, "wrong id"),
        lambda: w.desk.comment(w.lead, w.ann.agent_id, uuid4(), "hello", False),
    ):
        with pytest.raises(NotFoundError):
            lookup()
