"""Random command sequences through the Desk never reach an illegal state.

A hypothesis state machine sends any command to any ticket or escalation, as a
plausible principal. After every step it checks: every status is legal and its facts
are present; agents' loads match their active tickets and respect capacity unless
overridden; escalation levels cover every open escalation; a replay of the recorded
events gives exactly the live state; refused commands recorded nothing; every
recorded event round-trips through the mapper.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.persistence import Notification
from givens import DeskWorld, desk_world
from hypothesis import HealthCheck, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from pydantic import ValidationError

from engine.app.permissions import Principal
from engine.app.results import CommandResult
from engine.domain import assignment as asg
from engine.domain import directory as dirs
from engine.domain import escalation as esc
from engine.domain import ticket as tk
from engine.domain.base import DomainError, DomainEvent, InvalidTransitionError
from engine.domain.commands.escalations import (
    AcknowledgeEscalation,
    RecordVendorReference,
    ResolveEscalation,
    WithdrawEscalation,
)
from engine.domain.commands.tickets import (
    Accept,
    Assign,
    Cancel,
    Close,
    Comment,
    Escalate,
    Link,
    Merge,
    Pend,
    Rate,
    Release,
    Reopen,
    Resolve,
    Resume,
    Start,
    Triage,
)
from engine.domain.priority import Level, Priority
from engine.stores.envelope import EnvelopeMapper

STATUSES = {"new", "assigned", "in_progress", "pending", "resolved", "closed", "cancelled"}
INACTIVE = {"resolved", "closed", "cancelled"}
OPEN_ESCALATION = {esc.EscalationStatus.OPEN, esc.EscalationStatus.ACKNOWLEDGED}
LEVELS = st.sampled_from(list(Level))
REASONS = st.sampled_from([None, "VIP", "customer asked"])
ESCALATION_TARGETS = st.sampled_from(
    [
        ("functional", "queue", "network"),
        ("functional", "vendor", "Acme VPN"),
        ("functional", "department", "Facilities"),
        ("hierarchical", "manager", "Head of IT"),
        ("hierarchical", "queue", "network"),  # refused: hierarchical targets a manager
        ("functional", "queue", "no-such-queue"),  # refused: unknown queue
    ]
)


def leads_to(action: str, before: str, assignee: UUID | None) -> str:
    """The status a successful ticket command leaves behind."""
    fixed = {
        "start": "in_progress",
        "pend": "pending",
        "resume": "in_progress",
        "resolve": "resolved",
        "close": "closed",
        "cancel": "cancelled",
        "merge": "closed",
        "release": "new",
    }
    if action in fixed:
        return fixed[action]
    if action == "reopen" or (action == "assign" and before == "new"):
        return "assigned" if assignee is not None else "new"
    return before


class LifecycleMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.w: DeskWorld = desk_world()
        self.mapper = self.w.app.mapper
        assert isinstance(self.mapper, EnvelopeMapper)
        self.tickets: list[UUID] = []
        self.escalations: list[UUID] = []
        self.people: dict[UUID, Principal] = {
            p.agent_id: p for p in (self.w.lead, self.w.ann, self.w.bo) if p.agent_id
        }
        # States folded live from the notification log, one new record at a time.
        self.live: dict[UUID, Any] = {}
        self.position = 0
        self.overrides: dict[UUID, int] = defaultdict(int)
        self.catch_up()

    # --- reading -------------------------------------------------------------------

    def ticket(self, t: UUID) -> tk.Ticket:
        state = self.live[t]
        assert isinstance(state, tk.Ticket)
        return state

    def assignment(self, t: UUID) -> asg.Assignment:
        state = self.live.get(asg.assignment_id(t), asg.empty(t))
        assert isinstance(state, asg.Assignment)
        return state

    def status(self, t: UUID) -> str:
        return tk.public_status(self.ticket(t), self.assignment(t).agent_id)

    def evolve(self, event: DomainEvent) -> None:
        key, state = event.originator_id, self.live.get(event.originator_id)
        match event.aggregate_type:
            case "Ticket":
                self.live[key] = tk.evolve(state, event)
            case "Assignment":
                ticket_id = event.ticket_id  # type: ignore[attr-defined]
                self.live[key] = asg.evolve(state or asg.empty(ticket_id), event)
            case "Agent":
                self.live[key] = dirs.evolve_agent(state, event)
            case "Escalation":
                self.live[key] = esc.evolve(state, event)

    def catch_up(self) -> list[DomainEvent]:
        """Fold the records appended since the last step; check each round-trips."""
        records: list[Notification] = list(
            self.w.app.recorder.select_notifications(self.position + 1, 1000)
        )
        events = []
        for record in records:
            event = self.mapper.to_domain_event(record)
            assert isinstance(event, DomainEvent)
            assert record.topic == event.type_name
            assert self.mapper.to_domain_event(self.mapper.to_stored_event(event)) == event
            self.evolve(event)
            events.append(event)
            self.position = record.id
        return events

    # --- sending one command -------------------------------------------------------

    def attempt(self, action: str, t: UUID | None, command: Callable[[], CommandResult]) -> bool:
        """Send one command; True if it was recorded, False if refused."""
        head = self.w.head()
        before = self.status(t) if t is not None else None
        loads = {a: self.live[a].load for a in self.people}
        try:
            result = command()
        except (DomainError, ValidationError) as refused:
            # A command value refuses itself before it is sent only for a merged_from
            # link (the engine alone records those); everything else is the desk's refusal.
            assert not isinstance(refused, ValidationError) or action == "link", refused
            note(f"{action} refused: {type(refused).__name__}: {refused}")
            assert self.w.head() == head, f"a refused {action} recorded events"
            if isinstance(refused, InvalidTransitionError) and refused.aggregate == "ticket":
                assert t is not None
                allowed = tk.allowed_actions(
                    self.ticket(t), self.assignment(t).agent_id, self.assignment(t).accepted
                )
                assert (refused.state, action in allowed) == (before, False)
            return False
        note(f"{action} -> {result.aggregate_id} v{result.version}")
        events = self.catch_up()
        assert events and result.position == self.w.head()

        # Check the lifecycle table allowed it, and where it led.
        if t is not None and before is not None:
            assert action in tk.ALLOWED[before], f"{action} was recorded on a {before} ticket"
            assert self.status(t) == leads_to(action, before, self.assignment(t).agent_id)

        # Check capacity: an agent took a ticket beyond it only with an override
        # (or a reopening, which returns the ticket to its agent whatever the load).
        justified = any(isinstance(e, tk.TicketReopened) for e in events) or any(
            isinstance(e, asg.AssignedToAgent | asg.Reassigned) and e.capacity_override_reason
            for e in events
        )
        for event in events:
            if isinstance(event, dirs.AgentTookTicket):
                capacity = self.live[event.originator_id].capacity
                if justified:
                    self.overrides[event.originator_id] += 1
                else:
                    assert loads[event.originator_id] < capacity, "capacity was not enforced"
        return True

    def pick(self, data: st.DataObject, action: str) -> UUID:
        """A ticket for ``action``: mostly one whose status allows it (so runs reach
        deep into the lifecycle), otherwise any (so refusals are exercised)."""
        fitting = [t for t in self.tickets if action in tk.ALLOWED[self.status(t)]]
        if fitting and data.draw(st.integers(0, 3), label=f"any ticket for {action}?") > 0:
            return data.draw(st.sampled_from(fitting), label="ticket")
        return data.draw(st.sampled_from(self.tickets), label="ticket")

    def active(self) -> list[UUID]:
        return [t for t in self.tickets if self.status(t) not in INACTIVE]

    def worker(self, t: UUID, by_lead: bool) -> Principal:
        """Who works the ticket: its assigned agent, or the lead."""
        assignee = self.assignment(t).agent_id
        return self.w.lead if by_lead or assignee is None else self.people[assignee]

    def requester(self, t: UUID) -> Principal:
        return self.w.rita if self.ticket(t).requester_id == self.w.rita.id else self.w.sam

    # --- rules ---------------------------------------------------------------------

    @initialize(first=st.sampled_from(["service-desk", "network", None]), second=st.booleans())
    def two_tickets(self, first: str | None, second: bool) -> None:
        self.open_ticket(False, Level.HIGH, Level.MEDIUM, first)
        self.open_ticket(second, Level.LOW, Level.LOW, "service-desk")

    # A few live tickets keep the commands on them, so runs reach deep into the lifecycle.
    @precondition(lambda self: len(self.active()) < 3 and len(self.tickets) < 10)
    @rule(
        sam=st.booleans(),
        impact=LEVELS,
        urgency=LEVELS,
        queue=st.sampled_from(["service-desk", "network", None]),
    )
    def open_ticket(self, sam: bool, impact: Level, urgency: Level, queue: str | None) -> None:
        head = self.w.head()
        t = self.w.open(self.w.sam if sam else self.w.rita, queue, impact, urgency)
        self.catch_up()
        assert self.w.head() > head and self.status(t) == "new"
        assert self.ticket(t).priority == self.w.app.rules.matrix.priority(impact, urgency)
        self.tickets.append(t)

    @rule(hours=st.integers(min_value=1, max_value=200))
    def time_passes(self, hours: int) -> None:
        self.w.clock.advance(timedelta(hours=hours))

    @precondition(lambda self: self.tickets)
    @rule(data=st.data(), choice=st.booleans(), agent=st.sampled_from(["lead", "ann", "bo"]))
    def advance(self, data: st.DataObject, choice: bool, agent: str) -> None:
        """The next step a desk would usually take, so runs often get deep; every other
        rule sends its command to any ticket."""
        t = data.draw(st.sampled_from(self.tickets), label="ticket")
        desk, status, worker = self.w.desk, self.status(t), self.worker(t, False)
        steps: dict[str, tuple[str, Callable[[], CommandResult]]] = {
            "new": (
                "assign",
                lambda: desk.send(
                    self.w.lead,
                    Assign(
                        ticket_id=t, queue="service-desk", agent_id=getattr(self.w, agent).agent_id
                    ),
                ),
            ),
            "assigned": ("accept", lambda: desk.send(worker, Accept(ticket_id=t)))
            if choice
            else ("start", lambda: desk.send(worker, Start(ticket_id=t))),
            "in_progress": (
                "pend",
                lambda: desk.send(
                    worker, Pend(ticket_id=t, reason="awaiting logs", waiting_on="customer")
                ),
            )
            if choice
            else (
                "resolve",
                lambda: desk.send(
                    worker, Resolve(ticket_id=t, resolution_code="fixed", note="new profile")
                ),
            ),
            "pending": (
                "resume",
                lambda: desk.send(worker, Resume(ticket_id=t, note="logs arrived")),
            )
            if choice
            else (
                "resolve",
                lambda: desk.send(
                    worker, Resolve(ticket_id=t, resolution_code="fixed", note="new profile")
                ),
            ),
            "resolved": (
                "close",
                lambda: desk.send(self.w.lead, Close(ticket_id=t, reason="confirmed")),
            )
            if choice
            else (
                "reopen",
                lambda: desk.send(self.requester(t), Reopen(ticket_id=t, reason="drops again")),
            ),
            "closed": (
                "rate",
                lambda: desk.send(self.requester(t), Rate(ticket_id=t, score=4, comment="fine")),
            ),
            "cancelled": (
                "rate",
                lambda: desk.send(self.requester(t), Rate(ticket_id=t, score=4, comment="fine")),
            ),
        }
        action, command = steps[status]
        self.attempt(action, t, command)

    @precondition(lambda self: self.tickets)
    @rule(data=st.data(), impact=LEVELS, urgency=LEVELS, override=st.booleans(), reason=REASONS)
    def triage(
        self, data: st.DataObject, impact: Level, urgency: Level, override: bool, reason: str | None
    ) -> None:
        t = self.pick(data, "triage")
        priority = Priority.P1 if override else None
        self.attempt(
            "triage",
            t,
            lambda: self.w.desk.send(
                self.w.lead,
                Triage(
                    ticket_id=t, impact=impact, urgency=urgency, priority=priority, reason=reason
                ),
            ),
        )

    @precondition(lambda self: self.tickets)
    @rule(data=st.data(), by_requester=st.booleans(), internal=st.booleans())
    def comment(self, data: st.DataObject, by_requester: bool, internal: bool) -> None:
        t = self.pick(data, "comment")
        who = self.requester(t) if by_requester else self.w.lead
        self.attempt(
            "comment",
            t,
            lambda: self.w.desk.send(
                who, Comment(ticket_id=t, body="any news?", internal=internal)
            ),
        )

    @precondition(lambda self: self.active())
    @rule(
        data=st.data(),
        agent=st.sampled_from(["lead", "ann", "bo", None]),
        queue=st.sampled_from(["service-desk", "network", None]),
        reason=REASONS,
        override=st.booleans(),
    )
    def assign(
        self,
        data: st.DataObject,
        agent: str | None,
        queue: str | None,
        reason: str | None,
        override: bool,
    ) -> None:
        t = data.draw(st.sampled_from(self.active()), label="ticket")
        agent_id = getattr(self.w, agent).agent_id if agent else None
        override_reason = "only they know the VPN" if override else None
        self.attempt(
            "assign",
            t,
            lambda: self.w.desk.send(
                self.w.lead,
                Assign(
                    ticket_id=t,
                    queue=queue,
                    agent_id=agent_id,
                    reason=reason,
                    override_capacity_reason=override_reason,
                ),
            ),
        )

    @precondition(lambda self: self.tickets)
    @rule(data=st.data(), by_lead=st.booleans())
    def accept(self, data: st.DataObject, by_lead: bool) -> None:
        t = self.pick(data, "accept")
        self.attempt(
            "accept", t, lambda: self.w.desk.send(self.worker(t, by_lead), Accept(ticket_id=t))
        )

    @precondition(lambda self: self.tickets)
    @rule(data=st.data(), by_lead=st.booleans())
    def release(self, data: st.DataObject, by_lead: bool) -> None:
        t = self.pick(data, "release")
        self.attempt(
            "release", t, lambda: self.w.desk.send(self.worker(t, by_lead), Release(ticket_id=t))
        )

    @precondition(lambda self: self.tickets)
    @rule(data=st.data(), by_lead=st.booleans())
    def start(self, data: st.DataObject, by_lead: bool) -> None:
        t = self.pick(data, "start")
        self.attempt(
            "start", t, lambda: self.w.desk.send(self.worker(t, by_lead), Start(ticket_id=t))
        )

    @precondition(lambda self: self.tickets)
    @rule(data=st.data(), waiting_on=st.sampled_from(["customer", "vendor", "other"]))
    def pend(self, data: st.DataObject, waiting_on: tk.WaitingOn) -> None:
        t = self.pick(data, "pend")
        who = self.worker(t, False)
        self.attempt(
            "pend",
            t,
            lambda: self.w.desk.send(
                who, Pend(ticket_id=t, reason="awaiting logs", waiting_on=waiting_on)
            ),
        )

    @precondition(lambda self: self.tickets)
    @rule(data=st.data())
    def resume(self, data: st.DataObject) -> None:
        t = self.pick(data, "resume")
        self.attempt(
            "resume", t, lambda: self.w.desk.send(self.worker(t, False), Resume(ticket_id=t))
        )

    @precondition(lambda self: self.tickets)
    @rule(data=st.data(), by_lead=st.booleans())
    def resolve(self, data: st.DataObject, by_lead: bool) -> None:
        t = self.pick(data, "resolve")
        who = self.worker(t, by_lead)
        self.attempt(
            "resolve",
            t,
            lambda: self.w.desk.send(
                who, Resolve(ticket_id=t, resolution_code="fixed", note="new profile")
            ),
        )

    @precondition(lambda self: self.tickets)
    @rule(data=st.data())
    def reopen(self, data: st.DataObject) -> None:
        t = self.pick(data, "reopen")
        who = self.requester(t)
        self.attempt(
            "reopen", t, lambda: self.w.desk.send(who, Reopen(ticket_id=t, reason="drops again"))
        )

    @precondition(lambda self: self.tickets)
    @rule(data=st.data())
    def close(self, data: st.DataObject) -> None:
        t = self.pick(data, "close")
        self.attempt("close", t, lambda: self.w.desk.send(self.w.lead, Close(ticket_id=t)))

    @precondition(lambda self: self.tickets)
    @rule(data=st.data(), by_requester=st.booleans())
    def cancel(self, data: st.DataObject, by_requester: bool) -> None:
        t = self.pick(data, "cancel")
        who = self.requester(t) if by_requester else self.w.lead
        self.attempt(
            "cancel", t, lambda: self.w.desk.send(who, Cancel(ticket_id=t, reason="sent twice"))
        )

    @precondition(lambda self: self.tickets)
    @rule(
        data=st.data(),
        relation=st.sampled_from(
            [
                tk.Relation.PARENT,
                tk.Relation.CHILD,
                tk.Relation.RELATED,
                tk.Relation.DUPLICATE_OF,
                tk.Relation.MERGED_FROM,  # refused: recorded by the engine only
            ]
        ),
    )
    def link(self, data: st.DataObject, relation: tk.Relation) -> None:
        t, other = (
            data.draw(st.sampled_from(self.tickets)),
            data.draw(st.sampled_from(self.tickets)),
        )
        self.attempt(
            "link",
            t,
            lambda: self.w.desk.send(
                self.w.lead, Link(ticket_id=t, other_ticket_id=other, relation=relation)
            ),
        )

    @precondition(lambda self: self.tickets)
    @rule(data=st.data())
    def merge(self, data: st.DataObject) -> None:
        t, into = self.pick(data, "merge"), data.draw(st.sampled_from(self.tickets), label="into")
        self.attempt(
            "merge",
            t,
            lambda: self.w.desk.send(self.w.lead, Merge(ticket_id=t, into_ticket_id=into)),
        )

    @precondition(lambda self: self.tickets)
    @rule(data=st.data(), score=st.integers(min_value=1, max_value=5))
    def rate(self, data: st.DataObject, score: int) -> None:
        t = self.pick(data, "rate")
        self.attempt(
            "rate", t, lambda: self.w.desk.send(self.requester(t), Rate(ticket_id=t, score=score))
        )

    @precondition(lambda self: self.tickets)
    @rule(
        data=st.data(),
        to=ESCALATION_TARGETS,
        level=st.none() | st.integers(min_value=1, max_value=4),
    )
    def escalate(self, data: st.DataObject, to: tuple[Any, Any, str], level: int | None) -> None:
        t = self.pick(data, "escalate")
        kind, target_type, name = to
        e = uuid4()
        before = self.ticket(t).escalation_level
        self.attempt(
            "escalate",
            t,
            lambda: self.w.desk.send(
                self.w.lead,
                Escalate(
                    ticket_id=t,
                    escalation_id=e,
                    kind=kind,
                    target_type=target_type,
                    target=name,
                    reason="needs help",
                    level=level,
                ),
            ),
        )
        if e in self.live:
            self.escalations.append(e)
            raised = self.live[e]
            assert raised.level == (level if level is not None else before + 1)
            assert raised.level >= before

    @precondition(lambda self: self.escalations)
    @rule(
        data=st.data(),
        action=st.sampled_from(["acknowledge", "vendor-reference", "resolve", "withdraw"]),
    )
    def work_escalation(self, data: st.DataObject, action: str) -> None:
        e = data.draw(st.sampled_from(self.escalations))
        desk, lead = self.w.desk, self.w.lead
        commands: dict[str, Callable[[], CommandResult]] = {
            "acknowledge": lambda: desk.send(lead, AcknowledgeEscalation(escalation_id=e)),
            "vendor-reference": lambda: desk.send(
                lead, RecordVendorReference(escalation_id=e, vendor="Acme", reference="CASE-1")
            ),
            "resolve": lambda: desk.send(lead, ResolveEscalation(escalation_id=e, note="patched")),
            "withdraw": lambda: desk.send(
                lead, WithdrawEscalation(escalation_id=e, reason="not needed")
            ),
        }
        before = self.live[e].status
        if self.attempt(action, None, commands[action]):
            assert action in esc.ALLOWED[before]
            moves = {
                "acknowledge": esc.EscalationStatus.ACKNOWLEDGED,
                "resolve": esc.EscalationStatus.RESOLVED,
                "withdraw": esc.EscalationStatus.WITHDRAWN,
            }
            assert self.live[e].status == moves.get(action, before)

    # --- invariants ------------------------------------------------------------------

    @invariant()
    def every_status_is_legal_and_has_its_facts(self) -> None:
        for t in self.tickets:
            ticket, assignee, status = self.ticket(t), self.assignment(t).agent_id, self.status(t)
            assert status in STATUSES
            assert ticket.priority is not None
            assert (assignee is None) == (status == "new") or status in INACTIVE
            if status in ("closed", "cancelled"):
                assert ticket.closed_at is not None
            if status == "cancelled":
                assert ticket.cancel_reason
            if ticket.merged_into is not None:
                assert status == "closed"
            if status in ("resolved", "closed") and ticket.merged_into is None:
                assert ticket.resolved_at is not None and ticket.resolution_code
            if status == "pending":
                assert ticket.pending_reason and ticket.waiting_on
            else:
                assert (ticket.pending_reason, ticket.waiting_on) == (None, None)
            if self.assignment(t).accepted:
                assert assignee is not None

    @invariant()
    def loads_match_active_tickets_and_capacity(self) -> None:
        for agent_id in self.people:
            agent = self.live[agent_id]
            active = {
                t
                for t in self.tickets
                if self.ticket(t).is_active and self.assignment(t).agent_id == agent_id
            }
            assert agent.tickets == active, f"{agent.name}'s load is not their active tickets"
            assert agent.load <= agent.capacity + self.overrides[agent_id]

    @invariant()
    def escalation_levels_cover_open_escalations(self) -> None:
        for t in self.tickets:
            ticket = self.ticket(t)
            still_open = {
                (e, self.live[e].level)
                for e in self.escalations
                if self.live[e].ticket_id == t and self.live[e].status in OPEN_ESCALATION
            }
            assert set(ticket.open_escalations) == still_open
            assert ticket.escalation_level >= max((level for _, level in still_open), default=0)
            assert (ticket.escalation_level == 0) == (not still_open)

    @invariant()
    def a_replay_gives_the_live_state(self) -> None:
        app = self.w.app
        for t in self.tickets:
            assert app.aggregates.ticket(t) == self.live[t]
            assert app.aggregates.assignment(t) == self.assignment(t)
        for agent_id in self.people:
            assert app.aggregates.agent(agent_id) == self.live[agent_id]
        for e in self.escalations:
            assert app.aggregates.escalation(e) == self.live[e]


LifecycleMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestLifecycle = LifecycleMachine.TestCase
