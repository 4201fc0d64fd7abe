"""The SLA clock process: follows the notification log and records what time and the
tickets' events make true, as events that explain themselves.

- Ticket events drive the clocks (triage starts or re-targets, pending pauses, resume and
  reopen resume, a reply or work started is the first response, resolution meets,
  cancel and merge stop). Those reactions are stamped with the ticket event's time, so
  processing the log never reads the wall clock.
- ``tick()`` reads the injected time source and records ``SlaAtRisk`` and ``SlaBreached``
  that fell due, with the automatic escalation the queue's rules ask for, in the same
  append (causation: the SLA event). Before reacting to a ticket event, whatever fell due
  before that event is recorded first, so a lagging process records the same facts.
- ``AssignedToQueue`` on a queue that routes ``round_robin`` or ``least_loaded`` routes
  the ticket (``RoutingDecided`` + ``AssignedToAgent`` + ``AgentTookTicket``), or records
  ``RoutingDeferred`` and retries on later ticks, when agents change or time passes.

Exactly once, with any number of clock processes and across crashes: every decision is
made on freshly loaded aggregates and appended with optimistic concurrency, so a second
process's identical decision conflicts and is dropped; ticket-driven reactions carry the
ticket version they reflect and at-risk and breach are flags on the clock, so replaying
the log after a crash records nothing twice. The tracking position (the library's
tracking recorder, a small SQLite file in the data directory) only saves re-reading.

While catching up, the reactions of different tickets are decided one by one, as above,
and appended together (one commit) at the end of a batch of the log, or sooner when
``group_size`` are waiting, a ticket comes up again or something else must be recorded
first: the log holds the same events in the same order. If that append conflicts, none
of it is recorded and each ticket's reaction is decided again on a fresh load and
appended alone, as it would have been. The position moves past a reaction only once it
is recorded.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import cast
from uuid import UUID, uuid5

from eventsourcing.persistence import (
    IntegrityError,
    Notification,
    OperationalError,
    Recording,
    Tracking,
    TrackingRecorder,
)
from eventsourcing.popo import POPOTrackingRecorder
from pydantic import AwareDatetime, TypeAdapter

from engine.app.application import TicketingApp
from engine.app.config import SlaConfig
from engine.domain import assignment as asg
from engine.domain import availability as av
from engine.domain import directory as dirs
from engine.domain import escalation as esc
from engine.domain import routing, sla
from engine.domain import ticket as tk
from engine.domain.base import CommandMeta, DomainError, DomainEvent, derived_id
from engine.stores.envelope import decode_envelope

log = logging.getLogger("ticketing.clock")

ACTOR = "system:sla-clock"
_INSTANT = TypeAdapter(AwareDatetime)  # an event's occurred_at, validated as the event does
TRACKING_NAME = "sla-clock"
TRACKING_FILE = "clock.sqlite"
NAMESPACE = UUID("0c2d7a51-4b8e-4f5e-9a77-3f1e2b6d9c40")
MAX_ATTEMPTS = 8
RETRY_DEFERRED_EVERY = timedelta(minutes=1)
# Reactions appended together at most: fewer commits, while each append (it holds the
# store's writer lock) stays short next to the API's.
GROUP_SIZE = 16

TICKET_TOPICS = frozenset(
    {
        "TicketTriaged",
        "TicketCommented",
        "TicketWorkStarted",
        "TicketPended",
        "TicketResumed",
        "TicketResolved",
        "TicketReopened",
        "TicketCancelled",
        "TicketMerged",
    }
)
CLOCK_TOPICS = frozenset(
    cls.type_name
    for cls in (
        sla.SlaClockStarted,
        sla.SlaClockPaused,
        sla.SlaClockResumed,
        sla.FirstResponseMet,
        sla.SlaAtRisk,
        sla.SlaBreached,
        sla.SlaMet,
        sla.SlaClockStopped,
    )
)
ROUTED_TOPICS = frozenset({"AssignedToAgent", "Reassigned"})
# The Agent stream (kept folded for routing), and what may make a deferred ticket routable.
AGENT_TOPICS = frozenset(
    {
        "AgentRegistered",
        "AgentUpdated",
        "AgentTookTicket",
        "AgentDroppedTicket",
        "AgentAvailabilitySet",
        "AgentScheduleSet",
    }
)
ROUTABLE_AGAIN = (AGENT_TOPICS - {"AgentTookTicket"}) | {"RoutingPolicySet"}
INDEX_TOPICS = CLOCK_TOPICS | ROUTED_TOPICS | {"AssignedToQueue", "RoutingDeferred"}
RELEVANT = TICKET_TOPICS | INDEX_TOPICS | AGENT_TOPICS | ROUTABLE_AGAIN | {"RoutingTurnTaken"}


def _no_reaction(clock: sla.SlaClock | None) -> list[DomainEvent]:
    return []


@dataclass(frozen=True)
class _Decided:
    """A ticket's reaction, decided on a fresh load but not appended yet."""

    ticket_id: UUID
    events: list[DomainEvent]
    redo: Callable[[], int]  # decide again on a fresh load and append alone
    label: str  # what the reaction is to, for the log


class RetryLaterError(Exception):
    """A decision kept conflicting or the store is busy: stop here, retry from here later."""


def open_tracking(data_dir: Path) -> TrackingRecorder:
    """The clock's tracking position in ``data_dir/clock.sqlite`` (the library's recorder)."""
    from eventsourcing.sqlite import SQLiteFactory

    factory = SQLiteFactory({"SQLITE_DBNAME": str(data_dir / TRACKING_FILE)})
    return factory.tracking_recorder()


class SlaClockProcess:
    """Follows the log; ``run_once`` = ``catch_up`` (no wall clock) then ``tick`` (reads it)."""

    def __init__(
        self,
        app: TicketingApp,
        now: Callable[[], datetime],
        tracking: TrackingRecorder | None = None,
        *,
        name: str = TRACKING_NAME,
        batch_size: int = 500,
        group_size: int = GROUP_SIZE,
    ) -> None:
        self.app = app
        self.now = now
        self.config = SlaConfig(app.aggregates)
        self.tracking = tracking if tracking is not None else POPOTrackingRecorder()
        self.name = name
        self.batch_size = batch_size
        self.group_size = group_size
        self.position = self.tracking.max_tracking_id(name) or 0
        # Clocks that may still fall due, by ticket; tickets waiting for an agent.
        self.clocks: dict[UUID, sla.SlaClock] = {}
        # Each remembered clock's next deadline (clocks are immutable), in the same order,
        # so a tick does not work it out again for every clock.
        self._deadlines: dict[UUID, datetime | None] = {}
        self.deferred: dict[UUID, UUID] = {}  # ticket id -> the RoutingDeferred's event id
        # Agents and routing cursors, loaded once and then folded from the log as it is
        # read: a stale state is caught by the next append's optimistic concurrency (every
        # change of an agent is on its stream), which reloads it.
        self._agents: dict[UUID, tuple[dirs.Agent, av.Availability]] | None = None
        self._cursors: dict[str, routing.RoutingCursor] = {}
        self._agents_changed = False
        self._last_retry: datetime | None = None
        # Decided reactions of distinct tickets, appended together by ``_flush``, and the
        # last notification read before them; notification ids of our own clock events
        # (indexed when saved, so reading them back changes nothing).
        self._decided: list[_Decided] = []
        self._decided_tickets: set[UUID] = set()
        self._decided_until = 0
        self._own: set[int] = set()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._warm_up()

    # --- following the log ----------------------------------------------------------

    def _warm_up(self) -> None:
        """Rebuild the in-memory indexes from the log up to the tracked position."""
        start = 0
        while start < self.position:
            batch = self.app.recorder.select_notifications(
                start,
                self.batch_size,
                stop=self.position,
                topics=sorted(INDEX_TOPICS),
                inclusive_of_start=False,
            )
            for notification in batch:
                self._index(self._decode(notification))
            if len(batch) < self.batch_size:
                return
            start = batch[-1].id

    def catch_up(self) -> int:
        """React to every new notification; returns how many were read. Never reads the clock
        unless a routing decision is due (a replay of a processed log makes none)."""
        read = 0
        while True:
            batch = self.app.recorder.select_notifications(
                self.position, self.batch_size, inclusive_of_start=False
            )
            try:
                for notification in batch:
                    self._process(notification)
                    if self._decided:
                        self._decided_until = notification.id
                    else:
                        self.position = notification.id
                    read += 1
                self._flush()
            finally:
                self._decided.clear()  # not recorded: decided again from the position
                self._decided_tickets.clear()
                self._save_position()
            if len(batch) < self.batch_size:
                return read

    def _save_position(self) -> None:
        if self.position <= (self.tracking.max_tracking_id(self.name) or 0):
            return
        try:
            self.tracking.insert_tracking(Tracking(self.name, self.position))
        except IntegrityError:
            pass  # Another clock process sharing the tracking file is further on.

    def _decode(self, notification: Notification) -> DomainEvent:
        return cast(DomainEvent, self.app.mapper.to_domain_event(notification))

    def _process(self, notification: Notification) -> None:
        topic = notification.topic
        if topic not in RELEVANT:
            return
        if notification.id in self._own:
            self._own.discard(notification.id)
            return
        event = self._decode(notification)
        self._index(event)
        try:
            if topic in TICKET_TOPICS:
                self._on_ticket_event(event)
            elif isinstance(event, asg.AssignedToQueue):
                self._on_queued(event)
        except (RetryLaterError, OperationalError):
            raise
        except DomainError as error:
            # A refusal is final for this event (e.g. an unknown calendar): record nothing.
            log.warning("clock: %s at position %s: %s", topic, notification.id, error)

    def _index(self, event: DomainEvent) -> None:
        match event:
            case sla.SlaClockEvent():
                self._index_clock(event)
            case routing.RoutingDeferred():
                self.deferred[event.ticket_id] = event.event_id
            case asg.AssignedToQueue() | asg.AssignedToAgent() | asg.Reassigned():
                self.deferred.pop(event.ticket_id, None)
            case routing.RoutingTurnTaken():
                cursor = self._cursors.get(event.queue)
                if cursor is None or event.originator_version <= cursor.version:
                    pass  # Not cached, or seen already (our own append).
                elif event.originator_version == cursor.version + 1:
                    self._cursors[event.queue] = routing.evolve_cursor(cursor, event)
                else:
                    self._cursors[event.queue] = self.config.routing_cursor(event.queue)
        if event.type_name in AGENT_TOPICS:
            self._index_agent(event)
        if event.type_name in ROUTABLE_AGAIN:
            self._agents_changed = True

    def _index_agent(self, event: DomainEvent) -> None:
        if self._agents is None:
            return  # Not loaded yet: the first routing loads every agent.
        agent_id = event.originator_id
        current = self._agents.get(agent_id)
        if current is None or event.originator_version != current[0].version + 1:
            if current is None or event.originator_version > current[0].version:
                self._agents[agent_id] = self.config.agent(agent_id)  # new, or a gap
            return
        agent, availability = current
        self._agents[agent_id] = (
            dirs.evolve_agent(agent, event),
            av.evolve(availability, event) or availability,
        )

    def _agent_states(self) -> dict[UUID, tuple[dirs.Agent, av.Availability]]:
        if self._agents is None:
            self._agents = {agent.id: (agent, a) for agent, a in self.config.agents()}
        return self._agents

    def _cursor(self, queue: str) -> routing.RoutingCursor:
        if queue not in self._cursors:
            self._cursors[queue] = self.config.routing_cursor(queue)
        return self._cursors[queue]

    def _index_clock(self, event: sla.SlaClockEvent) -> None:
        ticket_id = event.ticket_id
        current = self.clocks.get(ticket_id)
        if current is not None and event.originator_version <= current.version:
            return  # Seen already (our own append, indexed when saved).
        if (current is None and event.originator_version != 1) or (
            current is not None and event.originator_version != current.version + 1
        ):
            # A clock that left the index (resolved, then reopened) or a gap: reload it.
            self._remember(self.config.clock(ticket_id))
            return
        self._remember(sla.evolve(current, event))

    def _remember(self, clock: sla.SlaClock | None) -> None:
        if clock is None:
            return
        if clock.phase in ("resolved", "stopped"):
            self.clocks.pop(clock.ticket_id, None)
            self._deadlines.pop(clock.ticket_id, None)
        else:
            self.clocks[clock.ticket_id] = clock
            self._deadlines[clock.ticket_id] = sla.next_deadline(clock)

    # --- reacting to ticket events -----------------------------------------------------

    def _on_ticket_event(self, event: DomainEvent) -> None:
        meta = CommandMeta(
            actor=ACTOR,
            occurred_at=event.occurred_at,
            correlation_id=uuid5(NAMESPACE, f"react:{event.event_id}"),
            causation_id=event.event_id,
        )
        ticket_id = event.originator_id

        def decide(clock: sla.SlaClock | None) -> list[DomainEvent]:
            command = self._command_for(event, clock)
            return sla.decide(clock, command, meta) if command is not None else []

        label = f"{event.type_name} of ticket {ticket_id}"
        self._decide(ticket_id, decide, event.occurred_at, meta, label)

    def _command_for(
        self, event: DomainEvent, clock: sla.SlaClock | None
    ) -> sla.ClockCommand | None:
        at = event.occurred_at
        return sla.clock_command_for(
            event,
            clock,
            terms=lambda priority: self.config.terms(priority, at),
            opened_at=lambda: self._opened_at(event.originator_id, at),
        )

    def _opened_at(self, ticket_id: UUID, default: datetime) -> datetime:
        """When the ticket's first event happened, read from its envelope alone (the rest
        of the event, personal data included, is not needed), as the event reads it."""
        first = self.app.recorder.select_events(ticket_id, lte=1)
        if not first:
            return default
        try:
            written = decode_envelope(first[0].state)["occurred_at"]
            return _INSTANT.validate_json(json.dumps(written), strict=True)
        except ValueError:  # not readable so: refused as a full read refuses it
            return self.app.aggregates.events(ticket_id, 1)[0].occurred_at

    # --- falling due -------------------------------------------------------------------

    def tick(self) -> int:
        """Record what has fallen due by now (the time source), and retry deferred routings.
        Returns the number of appends."""
        now = self.now()
        appended = 0
        due = [
            ticket_id
            for ticket_id, deadline in self._deadlines.items()
            if deadline is not None and deadline <= now
        ]
        for ticket_id in due:
            clock = self.clocks[ticket_id]
            meta = CommandMeta(
                actor=ACTOR,
                occurred_at=now,
                correlation_id=uuid5(NAMESPACE, f"due:{clock.id}:{clock.version}"),
            )
            work = partial(self._decide_and_save, ticket_id, _no_reaction, now, meta)
            appended += self._isolated(ticket_id, work)
        appended += self._retry_deferred(now)
        return appended

    @staticmethod
    def _isolated(ticket_id: UUID, work: Callable[[], int]) -> int:
        """One ticket's refusal (a domain error) does not hold up the others."""
        try:
            return work()
        except DomainError as error:
            log.warning("clock: ticket %s: %s", ticket_id, error)
            return 0

    def _decide(
        self,
        ticket_id: UUID,
        decide: Callable[[sla.SlaClock | None], list[DomainEvent]],
        until: datetime,
        meta: CommandMeta,
        label: str,
    ) -> None:
        """As ``_decide_and_save``, but the append waits for ``_flush`` (one commit for the
        reactions of many tickets)."""
        if ticket_id in self._decided_tickets:
            self._flush()  # decide on what the earlier reaction recorded
        clock = self.config.clock(ticket_id)
        events, due = self._plan(clock, decide, until, meta)
        if not events:
            self._remember(clock)
            return
        escalations = self._escalations(ticket_id, due, meta) if due else []
        redo = partial(self._decide_and_save, ticket_id, decide, until, meta)
        self._decided.append(_Decided(ticket_id, [*events, *escalations], redo, label))
        self._decided_tickets.add(ticket_id)
        if len(self._decided) >= self.group_size:
            self._flush()

    def _flush(self) -> None:
        """Append the decided reactions in one append; on a conflict decide each again."""
        decided, self._decided = self._decided, []
        self._decided_tickets.clear()
        if not decided:
            return
        try:
            self._saved(self.app.save(*(e for d in decided for e in d.events)))
        except IntegrityError:
            # Nothing was recorded: each reaction again, alone, on a fresh load.
            for d in decided:
                try:
                    d.redo()
                except DomainError as error:
                    log.warning("clock: %s: %s", d.label, error)
        self.position = max(self.position, self._decided_until)

    def _saved(self, recordings: list[Recording[UUID]]) -> None:
        for recording in recordings:
            event = recording.domain_event
            if isinstance(event, sla.SlaClockEvent):
                self._index_clock(event)
                self._own.add(recording.notification.id)

    def _decide_and_save(
        self,
        ticket_id: UUID,
        decide: Callable[[sla.SlaClock | None], list[DomainEvent]],
        until: datetime,
        meta: CommandMeta,
    ) -> int:
        """Record what fell due before ``until``, then ``decide``'s events, then what the new
        terms make due by ``until`` (an upgrade can be late at once), with the escalations,
        in one append; on a conflict reload and decide again. Returns 1 if it appended."""
        for _ in range(MAX_ATTEMPTS):
            clock = self.config.clock(ticket_id)
            events, due = self._plan(clock, decide, until, meta)
            if not events:
                self._remember(clock)
                return 0
            escalations = self._escalations(ticket_id, due, meta) if due else []
            self._flush()  # what was decided before is recorded first
            try:
                recordings = self.app.save(*events, *escalations)
            except IntegrityError:
                continue  # Someone recorded first: look again.
            self._saved(recordings)
            return 1
        raise RetryLaterError(f"the SLA clock of ticket {ticket_id} keeps conflicting")

    @staticmethod
    def _plan(
        clock: sla.SlaClock | None,
        decide: Callable[[sla.SlaClock | None], list[DomainEvent]],
        until: datetime,
        meta: CommandMeta,
    ) -> tuple[list[DomainEvent], list[DomainEvent]]:
        """The events to append, and those of them that fell due (to escalate)."""

        def fold(state: sla.SlaClock | None, events: list[DomainEvent]) -> sla.SlaClock | None:
            for event in events:
                state = sla.evolve(state, event)
            return state

        before = sla.decide(clock, sla.RecordDue(until=until), meta) if clock else []
        state = fold(clock, before)
        reaction = decide(state)
        state = fold(state, reaction)
        after = sla.decide(state, sla.RecordDue(until=until), meta) if reaction and state else []
        return [*before, *reaction, *after], [*before, *after]

    def _escalations(
        self,
        ticket_id: UUID,
        due: Iterable[DomainEvent],
        meta: CommandMeta,
    ) -> list[DomainEvent]:
        """The automatic escalations the queue's rules ask for on at-risk and breach events."""
        ticket = self.app.aggregates.ticket(ticket_id)
        assignment = self.app.aggregates.assignment(ticket_id)
        queue = assignment.queue or ""
        rules = self.config.escalation_rules(queue, meta.occurred_at)
        lead: str | None = None
        events: list[DomainEvent] = []
        for event in due:
            if not isinstance(event, sla.SlaAtRisk | sla.SlaBreached):
                continue
            status = tk.public_status(ticket, assignment.agent_id)
            if "escalate" not in tk.ALLOWED[status]:
                continue  # The ticket moved on (resolved, cancelled): nothing to escalate.
            if lead is None and rules.lead is None and queue:
                agents = [agent for agent, _ in self._agent_states().values()]
                lead = self.config.queue_lead(queue, agents)
            plan = sla.plan_escalation(event, rules, lead)
            if plan is None:
                continue
            trigger: esc.Trigger = (
                "sla_at_risk" if isinstance(event, sla.SlaAtRisk) else "sla_breached"
            )
            escalation_id = derived_id(
                "sla-escalation", f"{ticket_id}:{event.target}:{event.term}:{trigger}"
            )
            caused = meta.model_copy(update={"causation_id": event.event_id})
            # At risk tells the lead at the current level (at least 1); a breach goes up one.
            wanted = (
                max(1, ticket.escalation_level)
                if trigger == "sla_at_risk"
                else ticket.escalation_level + 1
            )
            level, recorded = tk.escalated(
                ticket, assignment.agent_id, caused, escalation_id, wanted
            )
            recorded += esc.raise_escalation(
                caused,
                escalation_id,
                ticket_id,
                plan.kind,
                plan.target_type,
                plan.target,
                plan.reason,
                level,
                trigger,
            )
            ticket = tk.evolve(ticket, recorded[0])
            events += recorded
        return events

    # --- routing ------------------------------------------------------------------------

    def _on_queued(self, event: asg.AssignedToQueue) -> None:
        if self.config.routing_policy(event.queue).policy == "manual":
            return  # Routed by hand (indexing this event dropped any deferral of the ticket).
        assignment = self.app.aggregates.assignment(event.ticket_id)
        if assignment.version != event.originator_version or assignment.agent_id is not None:
            return  # Superseded: assigned by hand, moved on, or already routed.
        self._route(event.ticket_id, event.event_id, record_deferral=True, loaded=assignment)

    def _route(
        self,
        ticket_id: UUID,
        causation_id: UUID,
        record_deferral: bool,
        loaded: asg.Assignment | None = None,
    ) -> int:
        if ticket_id in self._decided_tickets:
            self._flush()  # decide on what the ticket's reaction recorded
        for _ in range(MAX_ATTEMPTS):
            # The first attempt may use the assignment the caller has just loaded.
            assignment = loaded if loaded is not None else self.app.aggregates.assignment(ticket_id)
            loaded = None
            queue = assignment.queue
            if queue is None or assignment.agent_id is not None:
                self.deferred.pop(ticket_id, None)
                return 0
            policy = self.config.routing_policy(queue)
            if policy.policy == "manual" or not self.app.aggregates.ticket(ticket_id).is_active:
                self.deferred.pop(ticket_id, None)
                return 0
            now = self.now()
            states = self._agent_states()
            agents = {agent_id: agent for agent_id, (agent, _) in states.items()}
            members = routing.candidates(
                queue,
                list(agents.values()),
                {agent_id: a for agent_id, (_, a) in states.items()},
                now,
            )
            cursor = self._cursor(queue)
            decision = routing.decide(policy, cursor, members)
            if decision.agent_id is None and not record_deferral:
                return 0
            meta = CommandMeta(
                actor=ACTOR,
                occurred_at=now,
                correlation_id=uuid5(NAMESPACE, f"route:{assignment.id}:{assignment.version}"),
                causation_id=causation_id,
            )
            events = routing.route(decision, assignment, agents, cursor, meta)
            self._flush()  # what was decided before is recorded first
            try:
                self.app.save(*events)
            except IntegrityError:
                # Reload what the decision read from the caches before deciding again.
                self._cursors.pop(queue, None)
                if decision.agent_id is not None:
                    states[decision.agent_id] = self.config.agent(decision.agent_id)
                continue
            for recorded in events:
                self._index(recorded)
            return 1
        raise RetryLaterError(f"routing ticket {ticket_id} keeps conflicting")

    def _retry_deferred(self, now: datetime) -> int:
        if not self.deferred:
            return 0
        stale = self._last_retry is None or now - self._last_retry >= RETRY_DEFERRED_EVERY
        if not (self._agents_changed or stale):
            return 0
        self._agents_changed, self._last_retry = False, now
        return sum(
            self._isolated(ticket_id, partial(self._route, ticket_id, causation, False))
            for ticket_id, causation in list(self.deferred.items())
        )

    # --- running -------------------------------------------------------------------------

    def run_once(self) -> int:
        self.catch_up()
        return self.tick()

    def run(self, stopping: threading.Event, interval_s: float = 1.0) -> None:
        """Loop until ``stopping`` is set; errors are logged and the next round retries."""
        while not stopping.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("SLA clock round failed; retrying in %ss", interval_s)
            stopping.wait(interval_s)

    def start(self, interval_s: float = 1.0, stopping: threading.Event | None = None) -> None:
        """Run in a daemon thread until ``stop()`` (or ``stopping`` is set)."""
        if stopping is not None:
            self._stopping = stopping
        self._thread = threading.Thread(
            target=self.run, args=(self._stopping, interval_s), name="sla-clock", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)


def start_clock(
    app: TicketingApp,
    data_dir: Path,
    now: Callable[[], datetime],
    interval_s: float = 1.0,
    stopping: threading.Event | None = None,
) -> SlaClockProcess:
    """The clock process inside ``ticketing serve``: tracking in the data directory."""
    process = SlaClockProcess(app, now, open_tracking(data_dir))
    process.start(interval_s, stopping)
    return process
