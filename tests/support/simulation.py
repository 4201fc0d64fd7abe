"""A synthetic service desk for tests and benchmarks of the views (the engine never
uses it): it drives the domain deciders the way the application does, one atomic
append per command, with a clock and ids that the caller controls.

``Desk.play(choice, pick)`` turns two integers into one valid-looking command for
property tests; commands the domain refuses raise ``DomainError`` and record nothing.

With ``sla=True`` the desk also runs each ticket's SLA clock as the clock process does
(engine/processes/sla_clock.py: the same decisions, engine.domain.commands.processes,
and the same actor): every ticket event's clock reaction is appended right after it, and
moving the clock forward records the at-risk and breach events that fell due, with the
escalations the default rules ask for.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, StoredEvent

from engine.domain import assignment as routing
from engine.domain import directory, escalation, privacy, ticket
from engine.domain import sla as sla_module
from engine.domain.assignment import Assignment
from engine.domain.base import CommandMeta, DomainEvent, EventFactory, RuleViolationError
from engine.domain.commands.processes import (
    AdvanceSlaClock,
    ClockState,
    EscalateForSla,
    EscalationContext,
    advance_clock,
    escalate_for_sla,
    fallen_due,
)
from engine.domain.directory import Agent, Role
from engine.domain.escalation import Escalation, EscalationStatus
from engine.domain.priority import Level, Priority, PriorityMatrix
from engine.domain.ticket import Channel, OpenTicket, Relation, Ticket, Visibility
from engine.integrity.keystore import KeyStore
from engine.processes.sla_clock import ACTOR as CLOCK_ACTOR
from engine.processes.sla_clock import TICKET_TOPICS as CLOCK_REACTS_TO
from engine.stores.envelope import EnvelopeMapper

REOPEN_WINDOW = timedelta(days=7)
LEVELS = (Level.HIGH, Level.MEDIUM, Level.LOW)
CHANNELS = tuple(Channel)


class Desk:
    """Folded state of every aggregate plus the commands that change it."""

    def __init__(
        self,
        recorder: ApplicationRecorder,
        start: datetime,
        *,
        seed: int = 0,
        buffer: int = 1,
        keys: KeyStore | None = None,
        sla: bool = False,
    ) -> None:
        self.recorder = recorder
        self.sla = sla
        self.clocks: dict[UUID, sla_module.SlaClock] = {}
        self.clock = start
        self.rng = random.Random(seed)
        self.buffer = buffer
        self.keys = keys
        self.mapper = EnvelopeMapper(keys)
        self.erased: set[str] = set()
        self.matrix = PriorityMatrix()
        self.tickets: dict[UUID, Ticket] = {}
        self.assignments: dict[UUID, Assignment] = {}
        self.agents: dict[UUID, Agent] = {}
        self.escalations: dict[UUID, Escalation] = {}
        self.queues: list[str] = []
        self.recorded: list[DomainEvent] = []
        self._pending: list[StoredEvent] = []
        self._commands = 0

    # --- plumbing -------------------------------------------------------------------

    def new_id(self) -> UUID:
        return UUID(int=self.rng.getrandbits(128), version=4)

    def advance(self, minutes: float) -> None:
        self.clock += timedelta(minutes=minutes)
        if self.sla:
            self.tick()

    def meta(self, actor: str = "agent") -> CommandMeta:
        return CommandMeta(actor=actor, occurred_at=self.clock, correlation_id=self.new_id())

    def record(self, events: Sequence[DomainEvent]) -> None:
        """Fold the command's events and append them as one atomic append."""
        stored = [self.mapper.to_stored_event(e) for e in events]  # may refuse (erased)
        for event in events:
            self._fold(event)
        self.recorded.extend(events)
        self._pending.extend(stored)
        self._commands += 1
        if self._commands % self.buffer == 0:
            self.flush()
        if self.sla:
            for event in events:
                if event.aggregate_type == "Ticket":
                    self._clock_reaction(event)

    def flush(self) -> None:
        if self._pending:
            self.recorder.insert_events(self._pending)
            self._pending = []

    def _fold(self, event: DomainEvent) -> None:
        aid = event.originator_id
        match event.aggregate_type:
            case "Ticket":
                self.tickets[aid] = ticket.evolve(self.tickets.get(aid), event)
            case "Assignment":
                tid: UUID = getattr(event, "ticket_id")  # noqa: B009
                current = self.assignments.get(tid) or routing.empty(tid)
                self.assignments[tid] = routing.evolve(current, event)
            case "Agent":
                self.agents[aid] = directory.evolve_agent(self.agents.get(aid), event)
            case "Escalation":
                self.escalations[aid] = escalation.evolve(self.escalations.get(aid), event)
            case "Queue":
                self.queues.append(getattr(event, "name"))  # noqa: B009
            case "SlaClock":
                tid = getattr(event, "ticket_id")  # noqa: B009
                clock = sla_module.evolve(self.clocks.get(tid), event)
                if clock is not None:
                    self.clocks[tid] = clock

    # --- the SLA clock (as engine/processes/sla_clock.py runs it) ---------------------

    def tick(self) -> None:
        """Record the at-risk and breach events that fell due by now, and escalate them."""
        for clock in list(self.clocks.values()):
            deadline = sla_module.next_deadline(clock)
            if deadline is not None and deadline <= self.clock:
                self._advance(clock.ticket_id, None, self.clock, self.meta(CLOCK_ACTOR))

    def _clock_reaction(self, event: DomainEvent) -> None:
        """The clock's answer to one ticket event, with what falls due, as one append."""
        if event.type_name not in CLOCK_REACTS_TO:
            return
        meta = CommandMeta(
            actor=CLOCK_ACTOR,
            occurred_at=event.occurred_at,
            correlation_id=self.new_id(),
            causation_id=event.event_id,
        )
        self._advance(event.originator_id, event, event.occurred_at, meta)

    def _advance(
        self, tid: UUID, event: DomainEvent | None, until: datetime, meta: CommandMeta
    ) -> None:
        """The clock process's two decisions (engine.domain.commands.processes): the
        clock brought up to ``until``, then the escalations what fell due calls for."""
        state = ClockState(
            clock=self.clocks.get(tid),
            terms=self._default_terms,
            opened_at=lambda: self.tickets[tid].opened_at,
        )
        events = advance_clock(
            AdvanceSlaClock(ticket_id=tid, event=event, until=until), state, meta
        )
        due = fallen_due(events)
        if due:
            queue = self.assignment(tid).queue or ""
            context = EscalationContext(
                self.tickets[tid],
                self.assignment(tid),
                sla_module.EscalationRules(queue=queue),
                None,
            )
            command = EscalateForSla(ticket_id=tid, due=due, at=meta.occurred_at)
            events += escalate_for_sla(command, context, meta)
        if events:
            self.record(events)

    @staticmethod
    def _default_terms(priority: Priority) -> sla_module.ClockTerms:
        policy = sla_module.DEFAULT_POLICY
        calendar = sla_module.builtin_calendar(policy.targets[priority].calendar)
        assert calendar is not None, "the default policy uses built-in calendars"
        return sla_module.terms_for(policy, calendar, priority)

    def assignment(self, ticket_id: UUID) -> Assignment:
        return self.assignments.get(ticket_id) or routing.empty(ticket_id)

    def assignee(self, ticket_id: UUID) -> UUID | None:
        return self.assignment(ticket_id).agent_id

    def status(self, ticket_id: UUID) -> str:
        return ticket.public_status(self.tickets[ticket_id], self.assignee(ticket_id))

    # --- directory ------------------------------------------------------------------

    def create_queue(self, name: str) -> None:
        self.record(directory.create_queue(self.meta("admin"), name, f"the {name} team"))

    def register_agent(self, name: str, queues: list[str], capacity: int) -> UUID:
        agent_id = self.new_id()
        self.record(
            directory.register_agent(
                self.meta("admin"), agent_id, name, None, Role.AGENT, queues, capacity
            )
        )
        return agent_id

    # --- tickets --------------------------------------------------------------------

    def open(
        self,
        title: str,
        requester: str,
        queue: str | None,
        impact: Level = Level.MEDIUM,
        urgency: Level = Level.MEDIUM,
        channel: Channel = Channel.EMAIL,
    ) -> UUID:
        ticket_id = self.new_id()
        meta = self.meta(requester)
        cmd = OpenTicket(
            ticket_id=ticket_id,
            title=title,
            description=f"{title}: details",
            requester_id=requester,
            requester_name=requester.title(),
            channel=channel,
            category="general",
            impact=impact,
            urgency=urgency,
        )
        events = ticket.open_ticket(cmd, meta, self.matrix)
        if queue is not None:
            events += routing.assign_queue(routing.empty(ticket_id), meta, queue, None)
        self.record(events)
        return ticket_id

    def route(self, ticket_id: UUID, queue: str) -> None:
        self.record(routing.assign_queue(self.assignment(ticket_id), self.meta(), queue, "moved"))

    def assign(self, ticket_id: UUID, agent_id: UUID, override: str | None = None) -> None:
        a = self.assignment(ticket_id)
        t = self.tickets[ticket_id]
        ticket.require(t, a.agent_id, "assign")
        agent = self.agents[agent_id]
        queue = a.queue if a.queue in agent.queues else sorted(agent.queues)[0]
        meta = self.meta("lead")
        make = EventFactory(meta)
        reason = "rebalancing" if a.agent_id is not None else None
        events = routing.assign_agent(a, meta, agent, queue, reason, override)
        if a.agent_id is not None:
            events += directory.drop_ticket(self.agents[a.agent_id], make, ticket_id, "reassigned")
        events += directory.take_ticket(agent, make, ticket_id)
        self.record(events)

    def accept(self, ticket_id: UUID) -> None:
        a = self.assignment(ticket_id)
        ticket.require(self.tickets[ticket_id], a.agent_id, "accept", accepted=a.accepted)
        assert a.agent_id is not None
        self.record(routing.accept(a, self.meta(), a.agent_id))

    def release(self, ticket_id: UUID) -> None:
        a = self.assignment(ticket_id)
        ticket.require(self.tickets[ticket_id], a.agent_id, "release")
        meta = self.meta()
        events = routing.release(a, meta, "back to the queue")
        if a.agent_id is not None:
            agent = self.agents[a.agent_id]
            events += directory.drop_ticket(agent, EventFactory(meta), ticket_id, "released")
        self.record(events)

    def _drop(self, ticket_id: UUID, meta: CommandMeta, why: str) -> list[DomainEvent]:
        agent_id = self.assignee(ticket_id)
        if agent_id is None:
            return []
        return directory.drop_ticket(self.agents[agent_id], EventFactory(meta), ticket_id, why)

    def start(self, ticket_id: UUID) -> None:
        t = self.tickets[ticket_id]
        self.record(ticket.start(t, self.assignee(ticket_id), self.meta()))

    def comment(
        self, ticket_id: UUID, body: str, internal: bool = False, role: str = "agent"
    ) -> None:
        t = self.tickets[ticket_id]
        visibility: Visibility = "internal" if internal else "public"
        self.record(
            ticket.comment(
                t, self.assignee(ticket_id), self.meta(role), self.new_id(), body, visibility, role
            )
        )

    def pend(self, ticket_id: UUID) -> None:
        t = self.tickets[ticket_id]
        self.record(
            ticket.pend(t, self.assignee(ticket_id), self.meta(), "waiting for logs", "customer")
        )

    def resume(self, ticket_id: UUID) -> None:
        t = self.tickets[ticket_id]
        self.record(ticket.resume(t, self.assignee(ticket_id), self.meta(), "logs arrived"))

    def resolve(self, ticket_id: UUID) -> None:
        t = self.tickets[ticket_id]
        meta = self.meta()
        events = ticket.resolve(t, self.assignee(ticket_id), meta, "fixed", "restarted it")
        self.record(events + self._drop(ticket_id, meta, "resolved"))

    def reopen(self, ticket_id: UUID) -> None:
        t = self.tickets[ticket_id]
        meta = self.meta("requester")
        events = ticket.reopen(t, self.assignee(ticket_id), meta, "still broken", REOPEN_WINDOW)
        agent_id = self.assignee(ticket_id)
        if agent_id is not None:
            events += directory.take_ticket(self.agents[agent_id], EventFactory(meta), ticket_id)
        self.record(events)

    def close(self, ticket_id: UUID) -> None:
        t = self.tickets[ticket_id]
        self.record(ticket.close(t, self.assignee(ticket_id), self.meta("lead"), None))

    def cancel(self, ticket_id: UUID) -> None:
        t = self.tickets[ticket_id]
        meta = self.meta("lead")
        events = ticket.cancel(t, self.assignee(ticket_id), meta, "opened by mistake")
        self.record(events + self._drop(ticket_id, meta, "cancelled"))

    def rate(self, ticket_id: UUID, score: int) -> None:
        t = self.tickets[ticket_id]
        meta = self.meta("requester")
        self.record(ticket.rate(t, self.assignee(ticket_id), meta, score, "thanks"))

    def triage(self, ticket_id: UUID, priority: Priority) -> None:
        t = self.tickets[ticket_id]
        self.record(
            ticket.triage(
                t,
                self.assignee(ticket_id),
                self.meta("lead"),
                self.matrix,
                t.impact,
                t.urgency,
                priority,
                "customer is a hospital",
            )
        )

    def link(self, ticket_id: UUID, other_id: UUID) -> None:
        t, other = self.tickets[ticket_id], self.tickets[other_id]
        self.record(ticket.link(t, other, self.assignee(ticket_id), self.meta(), Relation.RELATED))

    def merge(self, ticket_id: UUID, target_id: UUID) -> None:
        t, target = self.tickets[ticket_id], self.tickets[target_id]
        meta = self.meta("lead")
        events = ticket.merge(t, target, self.assignee(ticket_id), meta, "same outage")
        self.record(events + self._drop(ticket_id, meta, "merged"))

    # --- escalations ----------------------------------------------------------------

    def escalate(self, ticket_id: UUID, vendor: bool = False) -> UUID:
        t = self.tickets[ticket_id]
        escalation_id = self.new_id()
        meta = self.meta("lead")
        level, events = ticket.escalated(t, self.assignee(ticket_id), meta, escalation_id, None)
        events += escalation.raise_escalation(
            meta,
            escalation_id,
            ticket_id,
            "functional",
            "vendor" if vendor else "queue",
            "acme" if vendor else "network",
            "needs specialist",
            level,
            "manual",
        )
        self.record(events)
        return escalation_id

    def acknowledge(self, escalation_id: UUID) -> None:
        e = self.escalations[escalation_id]
        self.record(escalation.acknowledge(e, self.meta("vendor"), "on it"))

    def vendor_reference(self, escalation_id: UUID) -> None:
        e = self.escalations[escalation_id]
        self.record(escalation.record_vendor_reference(e, self.meta(), "acme", "CASE-1"))

    def end_escalation(self, escalation_id: UUID, withdraw: bool = False) -> None:
        e = self.escalations[escalation_id]
        meta = self.meta("lead")
        if withdraw:
            events = escalation.withdraw(e, meta, "not needed")
        else:
            events = escalation.resolve(e, meta, "patched")
        events += ticket.escalation_closed(self.tickets[e.ticket_id], meta, escalation_id)
        self.record(events)

    # --- privacy --------------------------------------------------------------------

    def erase(self, subject_id: str) -> None:
        """Record the erasure, then destroy the subject's key (as the application does)."""
        if subject_id in self.erased:
            raise RuleViolationError(f"data subject {subject_id} is already erased")
        subject = privacy.DataSubject(subject_id=subject_id)
        self.record(privacy.erase(subject, self.meta("admin"), "GDPR art. 17"))
        self.erased.add(subject_id)
        if self.keys is not None:
            self.keys.destroy(subject_id)

    # --- random play ------------------------------------------------------------------

    def setup(self, agents: int = 3, capacity: int = 2) -> None:
        """Two queues and a few agents (small capacity, so capacity rules bite)."""
        for name in ("service-desk", "network"):
            self.create_queue(name)
        for i in range(agents):
            self.register_agent(f"agent {i}", [self.queues[i % 2]], capacity)

    def play(self, choice: int, pick: int) -> None:
        """One command chosen by two integers among those the ticket's status allows."""
        ids = list(self.tickets)
        if choice % 97 == 0:
            self.erase(f"user{pick % 3}")
            return
        if not ids or choice % 9 == 0:
            queue = self.queues[pick % len(self.queues)] if pick % 5 else None
            title = ("Printer jam", "VPN down", "Ünïcode ticket", "Password reset")[pick % 4]
            self.open(title, f"user{pick % 3}", queue, LEVELS[choice % 3], LEVELS[pick % 3])
            return
        tid = ids[pick % len(ids)]
        a = self.assignment(tid)
        allowed = sorted(ticket.allowed_actions(self.tickets[tid], a.agent_id, a.accepted))
        open_escalations = [
            e.id
            for e in self.escalations.values()
            if e.ticket_id == tid
            and e.status in (EscalationStatus.OPEN, EscalationStatus.ACKNOWLEDGED)
        ]
        options = [*allowed, "route"] + (["end-escalation", "ack"] if open_escalations else [])
        action = options[choice % len(options)]
        agents = list(self.agents)
        other = ids[(pick // 7) % len(ids)]
        match action:
            case "triage":
                self.triage(tid, tuple(Priority)[choice % 4])
            case "comment":
                self.comment(
                    tid, "a note", internal=choice % 2 == 0, role=("agent", "requester")[pick % 2]
                )
            case "assign":
                override = "urgent" if choice % 3 == 0 else None
                self.assign(tid, agents[choice % len(agents)], override)
            case "accept":
                self.accept(tid)
            case "release":
                self.release(tid)
            case "start":
                self.start(tid)
            case "pend":
                self.pend(tid)
            case "resume":
                self.resume(tid)
            case "resolve":
                self.resolve(tid)
            case "reopen":
                self.reopen(tid)
            case "close":
                self.close(tid)
            case "cancel":
                self.cancel(tid)
            case "rate":
                self.rate(tid, 1 + choice % 5)
            case "link":
                self.link(tid, other)
            case "merge":
                self.merge(tid, other)
            case "escalate":
                self.escalate(tid, vendor=choice % 2 == 0)
            case "route":
                self.route(tid, self.queues[choice % len(self.queues)])
            case "ack":
                self.acknowledge(open_escalations[0])
            case "end-escalation":
                self.end_escalation(open_escalations[-1], withdraw=choice % 2 == 0)
