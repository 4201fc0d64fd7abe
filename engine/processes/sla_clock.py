"""The SLA clock process: follows the notification log and records what time and the
tickets' events make true, as events that explain themselves.

- Ticket events drive the clocks (triage starts or re-targets, pending pauses, resume and
  reopen resume, a reply or work started is the first response, resolution meets,
  cancel and merge stop; the rule is ``sla.clock_command_for``). Those reactions are
  stamped with the ticket event's time, so processing the log never reads the wall clock.
- ``tick()`` reads the injected time source and records ``SlaAtRisk`` and ``SlaBreached``
  that fell due, with the automatic escalation the queue's rules ask for, in the same
  append (causation: the SLA event). Before reacting to a ticket event, whatever fell due
  before that event is recorded first, so a lagging process records the same facts.
- The same pass over the log routes queued tickets (engine.processes.routing).

Exactly once, with any number of clock processes and across crashes: every decision is
made by the runner on freshly loaded aggregates and appended with optimistic
concurrency, so a second process's identical decision conflicts and is dropped;
ticket-driven reactions carry the ticket version they reflect and at-risk and breach are
flags on the clock, so replaying the log after a crash records nothing twice. How the
reactions of many tickets are appended together: engine.processes.follower.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from uuid import UUID, uuid5

from eventsourcing.persistence import TrackingRecorder
from pydantic import AwareDatetime, TypeAdapter

from engine.app.application import TicketingApp
from engine.app.config import SlaConfig
from engine.app.errors import ConflictError
from engine.app.handlers import HANDLERS
from engine.app.repository import Repository
from engine.app.runner import Decided, Handler, Runner
from engine.domain import sla
from engine.domain.base import CommandMeta, DomainEvent
from engine.domain.commands.processes import (
    AdvanceSlaClock,
    ClockState,
    EscalateForSla,
    EscalationContext,
    advance_clock,
    escalate_for_sla,
    fallen_due,
)
from engine.processes.follower import (
    GROUP_SIZE,
    MAX_ATTEMPTS,
    LogFollower,
    Pending,
    RetryLaterError,
    tracking_in,
)
from engine.processes.routing import ACTOR, NAMESPACE, Router
from engine.stores.envelope import decode_envelope

_INSTANT = TypeAdapter(AwareDatetime)  # an event's occurred_at, validated as the event does
TRACKING_NAME = "sla-clock"
TRACKING_FILE = "clock.sqlite"

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

__all__ = ["ACTOR", "TRACKING_NAME", "SlaClockProcess", "open_tracking", "start_clock"]


def open_tracking(data_dir: Path) -> TrackingRecorder:
    """The clock's tracking position in ``data_dir/clock.sqlite``."""
    return tracking_in(data_dir, TRACKING_FILE)


class Clocks:
    """Keeps every ticket's SLA clock; a reactor of the clock process's log follower."""

    topics = TICKET_TOPICS | CLOCK_TOPICS
    index_topics = CLOCK_TOPICS

    def __init__(self, follower: LogFollower, config: SlaConfig, router: Router) -> None:
        self.follower = follower
        self.runner = follower.runner
        self.config = config
        self.router = router
        # Clocks that may still fall due, by ticket, and each one's next deadline (clocks
        # are immutable), so a tick does not work it out again for every clock.
        self.clocks: dict[UUID, sla.SlaClock] = {}
        self._deadlines: dict[UUID, datetime | None] = {}
        self.runner.register(AdvanceSlaClock, Handler(None, self._load_clock, advance_clock))
        self.runner.register(EscalateForSla, Handler(None, self._load_context, escalate_for_sla))

    # --- the index of clocks -------------------------------------------------------------------

    def index(self, event: DomainEvent) -> None:
        if not isinstance(event, sla.SlaClockEvent):
            return
        ticket_id = event.ticket_id
        current = self.clocks.get(ticket_id)
        if current is not None and event.originator_version <= current.version:
            return  # Seen already (our own append, indexed when saved).
        if (current is None and event.originator_version != 1) or (
            current is not None and event.originator_version != current.version + 1
        ):
            # A clock that left the index (resolved, then reopened) or a gap: reload it.
            self.remember(self.config.clock(ticket_id))
            return
        self.remember(sla.evolve(current, event))

    def remember(self, clock: sla.SlaClock | None) -> None:
        if clock is None:
            return
        if clock.phase in ("resolved", "stopped"):
            self.clocks.pop(clock.ticket_id, None)
            self._deadlines.pop(clock.ticket_id, None)
        else:
            self.clocks[clock.ticket_id] = clock
            self._deadlines[clock.ticket_id] = sla.next_deadline(clock)

    # --- reacting to ticket events and to time -----------------------------------------------

    def react(self, event: DomainEvent) -> None:
        if event.type_name not in TICKET_TOPICS:
            return
        meta = CommandMeta(
            actor=ACTOR,
            occurred_at=event.occurred_at,
            correlation_id=uuid5(NAMESPACE, f"react:{event.event_id}"),
            causation_id=event.event_id,
        )
        command = AdvanceSlaClock(
            ticket_id=event.originator_id, event=event, until=event.occurred_at
        )
        if self.follower.waits_for(command.ticket_id):
            self.follower.flush()  # decide on what the earlier reaction recorded
        decided = self._decide(command, meta)
        if decided:
            label = f"{event.type_name} of ticket {command.ticket_id}"
            redo = partial(self._decide_and_save, command, meta)
            self.follower.defer(Pending(command.ticket_id, decided, redo, label))

    def tick(self, now: datetime) -> int:
        """Record what has fallen due by now; returns the number of appends."""
        appended = 0
        due = [
            t for t, deadline in self._deadlines.items() if deadline is not None and deadline <= now
        ]
        for ticket_id in due:
            clock = self.clocks[ticket_id]
            meta = CommandMeta(
                actor=ACTOR,
                occurred_at=now,
                correlation_id=uuid5(NAMESPACE, f"due:{clock.id}:{clock.version}"),
            )
            command = AdvanceSlaClock(ticket_id=ticket_id, until=now)
            work = partial(self._decide_and_save, command, meta)
            appended += self.follower.isolated(ticket_id, work)
        return appended

    def _decide(self, command: AdvanceSlaClock, meta: CommandMeta) -> tuple[Decided, ...]:
        """The clock's events and the escalations they call for (nothing: remembered)."""
        decided = self.runner.decide(command, meta)
        if not decided.events:
            self.remember(decided.state.clock)
            return ()
        due = fallen_due(decided.events)
        if not due:
            return (decided,)
        escalate = EscalateForSla(ticket_id=command.ticket_id, due=due, at=meta.occurred_at)
        return decided, self.runner.decide(escalate, meta)

    def _decide_and_save(self, command: AdvanceSlaClock, meta: CommandMeta) -> int:
        """Decide on a fresh load and append alone; on a conflict load and decide again.
        Returns 1 if it appended."""
        for _ in range(MAX_ATTEMPTS):
            decided = self._decide(command, meta)
            if not decided:
                return 0
            try:
                self.follower.append_now(*decided)
            except ConflictError:
                continue  # Someone recorded first: look again.
            return 1
        raise RetryLaterError(f"the SLA clock of ticket {command.ticket_id} keeps conflicting")

    # --- loading -------------------------------------------------------------------------------

    def _load_clock(self, repo: Repository, c: AdvanceSlaClock) -> ClockState:
        at = c.event.occurred_at if c.event is not None else c.until
        return ClockState(
            clock=self.config.clock(c.ticket_id),
            terms=lambda priority: self.config.terms(priority, at),
            opened_at=lambda: self._opened_at(repo, c.ticket_id, at),
        )

    @staticmethod
    def _opened_at(repo: Repository, ticket_id: UUID, default: datetime) -> datetime:
        """When the ticket's first event happened, read from its envelope alone (the rest
        of the event, personal data included, is not needed), as the event reads it."""
        first = repo.app.recorder.select_events(ticket_id, lte=1)
        if not first:
            return default
        try:
            written = decode_envelope(first[0].state)["occurred_at"]
            return _INSTANT.validate_json(json.dumps(written), strict=True)
        except ValueError:  # not readable so: refused as a full read refuses it
            return repo.events(ticket_id, 1)[0].occurred_at

    def _load_context(self, repo: Repository, c: EscalateForSla) -> EscalationContext:
        assignment = repo.assignment(c.ticket_id)
        queue = assignment.queue or ""
        rules = self.config.escalation_rules(queue, c.at)
        lead = self.router.queue_lead(queue) if rules.lead is None and queue else None
        return EscalationContext(repo.ticket(c.ticket_id), assignment, rules, lead)


class SlaClockProcess(LogFollower):
    """Follows the log for the SLA clocks and routing; ``run_once`` = ``catch_up`` (no
    wall clock) then ``tick`` (reads it)."""

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
        runner = Runner(app, HANDLERS, now)
        super().__init__(runner, now, tracking, name, batch_size=batch_size, group_size=group_size)
        self.config = SlaConfig(app.aggregates)
        self.router = Router(self, self.config)
        self.keeper = Clocks(self, self.config, self.router)
        self.reactors = [self.keeper, self.router]
        self.warm_up()

    @property
    def clocks(self) -> dict[UUID, sla.SlaClock]:
        """The clocks that may still fall due, by ticket."""
        return self.keeper.clocks

    @property
    def deferred(self) -> dict[UUID, UUID]:
        """The tickets waiting for an agent, with the deferral's event id."""
        return self.router.deferred


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
