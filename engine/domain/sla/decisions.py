"""The SLA clock's ``decide`` (commands in, events out) and ``next_deadline``.

Due times are computed here (business-time arithmetic, pauses excluded) and recorded in
the events, so a replay never consults a calendar, and a later policy or calendar change
never rewrites a past ticket's outcome.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

from engine.domain.base import CommandMeta, DomainEvent, EventFactory
from engine.domain.calendar import BusinessCalendar
from engine.domain.sla.clock import (
    Deadlines,
    FirstResponseMet,
    SlaAtRisk,
    SlaBreached,
    SlaClock,
    SlaClockPaused,
    SlaClockResumed,
    SlaClockStarted,
    SlaClockStopped,
    SlaMet,
    clock_id,
    elapsed,
)
from engine.domain.sla.common import TARGETS, SlaTarget
from engine.domain.sla.reactions import (
    ClockCommand,
    PauseClock,
    RecordDue,
    RecordFirstResponse,
    RecordResolution,
    ResumeClock,
    StartClock,
    StopClock,
)


def _deadlines(
    calendar: BusinessCalendar,
    started_at: datetime,
    pauses: Sequence[tuple[datetime, datetime]],
    share: float,
    durations: dict[SlaTarget, timedelta | None],
) -> Deadlines:
    """Due and at-risk instants of the targets still running (``None`` duration: met)."""
    fields: dict[str, datetime | None] = {}
    for name, duration in durations.items():
        if duration is None:
            continue
        fields[f"{name}_due_at"] = calendar.add_business_time(started_at, duration, pauses)
        fields[f"{name}_at_risk_at"] = calendar.add_business_time(
            started_at, duration * share, pauses
        )
    return Deadlines.model_validate(fields)


def decide(state: SlaClock | None, command: ClockCommand, meta: CommandMeta) -> list[DomainEvent]:
    """What the clock records for ``command``; an empty list when nothing changes.

    Ticket-driven commands whose ``source_version`` the clock has already seen record
    nothing, so reprocessing the log (after a crash, or by a second clock process) is safe.
    """
    if isinstance(command, StartClock):
        return _start(state, command, meta)
    if state is None or state.phase == "stopped":
        return []
    if isinstance(command, RecordDue):
        return _record_due(state, command, meta)
    if command.source_version <= state.ticket_version:
        return []
    make = EventFactory(meta)
    version = state.version + 1
    common = {"ticket_id": state.ticket_id, "source_version": command.source_version}
    match command:
        case PauseClock():
            if state.phase != "running":
                return []
            return [
                make.make(
                    SlaClockPaused,
                    state.id,
                    version,
                    paused_at=command.at,
                    reason=command.reason,
                    **common,
                )
            ]
        case ResumeClock():
            wanted = "resolved" if command.reason == "reopened" else "paused"
            if state.phase != wanted or state.paused_since is None:
                return []
            pauses = (*state.pauses, (state.paused_since, max(command.at, state.paused_since)))
            durations: dict[SlaTarget, timedelta | None] = {
                name: None
                if state.target(name).met and not (name == "resolution" and wanted == "resolved")
                else state.target(name).duration
                for name in TARGETS
            }
            deadlines = _deadlines(
                state.calendar, state.started_at, pauses, state.at_risk_share, durations
            )
            return [
                make.make(
                    SlaClockResumed,
                    state.id,
                    version,
                    resumed_at=command.at,
                    reason=command.reason,
                    deadlines=deadlines,
                    **common,
                )
            ]
        case RecordFirstResponse():
            if state.first_response.met or state.phase == "resolved":
                return []
            return [_first_response(state, make, version, command.at, command.source_version)]
        case RecordResolution():
            if state.phase == "resolved":
                return []
            events: list[DomainEvent] = []
            if not state.first_response.met:
                events.append(
                    _first_response(state, make, version, command.at, command.source_version)
                )
            used = elapsed(state, "resolution", command.at)
            events.append(
                make.make(
                    SlaMet,
                    state.id,
                    version + len(events),
                    resolved_at=command.at,
                    elapsed=used,
                    within_target=_within(state, "resolution", used),
                    **common,
                )
            )
            return events
        case StopClock():
            return [
                make.make(
                    SlaClockStopped,
                    state.id,
                    version,
                    stopped_at=command.at,
                    reason=command.reason,
                    **common,
                )
            ]
    return []


def _within(state: SlaClock, target: SlaTarget, used: timedelta) -> bool:
    t = state.target(target)
    return not t.breached and used <= t.duration


def _first_response(
    state: SlaClock, make: EventFactory, version: int, at: datetime, source_version: int
) -> DomainEvent:
    used = elapsed(state, "first_response", at)
    return make.make(
        FirstResponseMet,
        state.id,
        version,
        ticket_id=state.ticket_id,
        source_version=source_version,
        responded_at=at,
        elapsed=used,
        within_target=_within(state, "first_response", used),
    )


def _start(state: SlaClock | None, command: StartClock, meta: CommandMeta) -> list[DomainEvent]:
    terms = command.terms
    if state is not None and (
        command.source_version <= state.ticket_version
        or state.phase in ("resolved", "stopped")
        or terms.priority == state.priority
    ):
        return []
    started_at = state.started_at if state is not None else command.opened_at
    pauses = state.pauses if state is not None else ()
    durations: dict[SlaTarget, timedelta | None] = {
        "first_response": terms.first_response,
        "resolution": terms.resolution,
    }
    if state is not None:
        for name in TARGETS:
            if state.target(name).met:
                durations[name] = None
    deadlines = (
        Deadlines()
        if state is not None and state.phase == "paused"
        else _deadlines(terms.calendar, started_at, pauses, terms.at_risk_share, durations)
    )
    return [
        EventFactory(meta).make(
            SlaClockStarted,
            clock_id(command.ticket_id),
            state.version + 1 if state is not None else 1,
            ticket_id=command.ticket_id,
            term=state.term + 1 if state is not None else 1,
            reason="retriaged" if state is not None else "opened",
            source_version=command.source_version,
            priority=terms.priority,
            policy_version=terms.policy_version,
            calendar=terms.calendar,
            calendar_version=terms.calendar_version,
            first_response_target=terms.first_response,
            resolution_target=terms.resolution,
            at_risk_share=terms.at_risk_share,
            started_at=started_at,
            deadlines=deadlines,
        )
    ]


Mark = tuple[datetime, int, SlaTarget, type[SlaAtRisk] | type[SlaBreached]]


def _unrecorded(clock: SlaClock) -> Iterator[Mark]:
    """The at-risk and breach instants not recorded yet of the targets still running, each
    with the target's order and name and the event it makes."""
    for order, name in enumerate(TARGETS):
        t = clock.target(name)
        if t.met or t.due_at is None or t.at_risk_at is None:
            continue
        if not t.at_risk:
            yield t.at_risk_at, order, name, SlaAtRisk
        if not t.breached:
            yield t.due_at, order, name, SlaBreached


def _record_due(state: SlaClock, command: RecordDue, meta: CommandMeta) -> list[DomainEvent]:
    # Only the present terms are known: judging an instant before the clock last changed
    # (a reread of an old ticket event) could apply deadlines that were not yet in force.
    if state.phase != "running" or command.until < state.updated_at:
        return []
    # At risk once the instant is reached; breached only once it has passed.
    due = [
        mark
        for mark in _unrecorded(state)
        if mark[0] < command.until or (mark[0] == command.until and mark[3] is SlaAtRisk)
    ]
    make = EventFactory(meta)
    events: list[DomainEvent] = []
    for _, _, name, kind in sorted(due, key=lambda d: (d[0], d[1], d[3] is SlaBreached)):
        t = state.target(name)
        assert t.due_at is not None and t.at_risk_at is not None
        common = {
            "ticket_id": state.ticket_id,
            "target": name,
            "term": state.term,
            "priority": state.priority,
        }
        version = state.version + 1 + len(events)
        if kind is SlaAtRisk:
            events.append(
                make.make(
                    SlaAtRisk,
                    state.id,
                    version,
                    at_risk_at=t.at_risk_at,
                    due_at=t.due_at,
                    share=state.at_risk_share,
                    **common,
                )
            )
        else:
            events.append(make.make(SlaBreached, state.id, version, due_at=t.due_at, **common))
    return events


def next_deadline(clock: SlaClock) -> datetime | None:
    """The next instant at which an at-risk or breach event falls due, if the clock runs."""
    if clock.phase != "running":
        return None
    return min((mark[0] for mark in _unrecorded(clock)), default=None)
