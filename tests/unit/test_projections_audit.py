"""Audit view: a ticket's timeline across its aggregates, state as of a past moment,
and exports whose digest covers exactly the bytes handed out."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.popo import POPOApplicationRecorder

from engine.domain.priority import Level, Priority
from engine.integrity.keystore import MemoryKeyStore
from engine.integrity.personal import ERASED
from engine.projections import Views
from tests.support.simulation import Desk

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class World:
    def __init__(self, tmp: Path) -> None:
        self.keys = MemoryKeyStore()
        self.recorder = POPOApplicationRecorder()
        self.desk = Desk(self.recorder, T0, seed=3, keys=self.keys)
        self.desk.create_queue("service-desk")
        self.ann = self.desk.register_agent("Ann", ["service-desk"], 3)
        self.views = Views(self.recorder, tmp, keys=self.keys)

    def at(self, minutes: float) -> datetime:
        return T0 + timedelta(minutes=minutes)

    def story(self) -> UUID:
        """Opened at +10, assigned +20, internal note +30, public reply +40, started +50,
        escalated +60, escalation resolved +70, resolved +80."""
        d = self.desk
        d.clock = self.at(10)
        tid = d.open("Printer jam", "rita", "service-desk", Level.HIGH, Level.MEDIUM)
        d.clock = self.at(20)
        d.assign(tid, self.ann)
        d.clock = self.at(30)
        d.comment(tid, "probably the fuser", internal=True)
        d.clock = self.at(40)
        d.comment(tid, "we are on it")
        d.clock = self.at(50)
        d.accept(tid)
        d.start(tid)
        d.clock = self.at(60)
        escalation = d.escalate(tid, vendor=True)
        d.clock = self.at(70)
        d.end_escalation(escalation)
        d.clock = self.at(80)
        d.resolve(tid)
        self.views.catch_up()
        return tid


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.views.close()


def test_history_spans_the_tickets_aggregates_in_log_order(world: World) -> None:
    tid = world.story()
    history = world.views.history(tid)
    assert [h.type for h in history] == [
        "TicketOpened", "TicketTriaged", "AssignedToQueue", "AssignedToAgent",
        "TicketCommented", "TicketCommented", "AssignmentAccepted", "TicketWorkStarted",
        "TicketEscalated", "EscalationRaised", "EscalationResolved", "TicketEscalationClosed",
        "TicketResolved",
    ]  # fmt: skip
    positions = [h.position for h in history]
    assert positions == sorted(positions)
    assert {h.ticket_id for h in history} == {tid}
    assert {h.aggregate_type for h in history} == {"Ticket", "Assignment", "Escalation"}

    opened, triaged, routed, assigned = history[:4]
    assert opened.actor == "rita" and opened.occurred_at == world.at(10)
    assert ("title", None, "Printer jam") in [(c.field, c.from_, c.to) for c in opened.changes]
    assert [(c.field, c.from_, c.to) for c in triaged.changes] == [("priority", None, "P2")]
    assert [(c.field, c.to) for c in routed.changes] == [("queue", "service-desk")]
    # Assigning a new ticket changes its public status.
    assert ("status", "new", "assigned") in [(c.field, c.from_, c.to) for c in assigned.changes]
    assert assigned.actor == "lead" and assigned.occurred_at == world.at(20)

    raised = history[9]
    assert raised.reason == "needs specialist"
    resolved = history[-1]
    assert resolved.reason == "restarted it"
    changes = {c.field: (c.from_, c.to) for c in resolved.changes}
    assert changes["lifecycle"] == ("in_progress", "resolved")
    assert changes["status"] == ("in_progress", "resolved")


def test_internal_notes_are_left_out_on_request(world: World) -> None:
    tid = world.story()
    everything = world.views.history(tid)
    public = world.views.history(tid, include_internal=False)
    assert len(public) == len(everything) - 1
    assert [h.data["body"] for h in everything if h.type == "TicketCommented"] == [
        "probably the fuser", "we are on it",
    ]  # fmt: skip
    assert [h.data["body"] for h in public if h.type == "TicketCommented"] == ["we are on it"]
    # The comment count still counts the internal note (the fold sees every event).
    reply = next(h for h in public if h.type == "TicketCommented")
    assert [(c.field, c.from_, c.to) for c in reply.changes] == [
        ("comment_count", 1, 2), ("first_response_at", None, "2026-03-02T09:40:00Z"),
    ]  # fmt: skip


def test_as_of_gives_the_ticket_as_it_stood(world: World) -> None:
    tid = world.story()
    assert world.views.ticket_as_of(tid, at=world.at(5)) is None
    at_opening = world.views.ticket_as_of(tid, at=world.at(10))
    assert at_opening is not None
    assert (at_opening.status, at_opening.ticket.priority) == ("new", Priority.P2)
    assigned = world.views.ticket_as_of(tid, at=world.at(25))
    assert assigned is not None and assigned.status == "assigned"
    assert assigned.assignment.agent_id == world.ann
    escalated = world.views.ticket_as_of(tid, at=world.at(65))
    assert escalated is not None and escalated.ticket.escalation_level == 1
    assert [e.status for e in escalated.escalations] == ["open"]
    final = world.views.ticket_as_of(tid)
    assert final is not None and final.status == "resolved"
    assert final.ticket == world.desk.tickets[tid]
    # By position too.
    history = world.views.history(tid)
    by_position = world.views.ticket_as_of(tid, position=history[3].position)
    assert by_position is not None and by_position.status == "assigned"
    assert by_position.position == history[3].position


def _digest(lines: list[str]) -> str:
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def test_export_jsonl_with_a_digest_of_its_bytes(world: World) -> None:
    tid = world.story()
    export = world.views.export(ticket_id=tid)
    with pytest.raises(RuntimeError):
        _ = export.digest  # not before every line was read
    lines = list(export)
    assert export.digest == _digest(lines)
    assert export.count == len(lines) == len(world.views.history(tid))
    items = [json.loads(line) for line in lines]
    assert [i["type"] for i in items] == [h.type for h in world.views.history(tid)]
    assert items[0]["changes"][0] == ["lifecycle", None, "new"]
    assert items[0]["data"]["title"] == "Printer jam"

    # The same export read again gives the same bytes, even after new events.
    world.desk.clock = world.at(90)
    world.desk.reopen(tid)
    world.views.catch_up()
    again = list(world.views.export(ticket_id=tid, to=world.at(81)))
    assert again == lines


def test_export_windows_and_filters(world: World) -> None:
    tid = world.story()
    window = list(world.views.export(from_=world.at(30), to=world.at(60)))
    types = [json.loads(line)["type"] for line in window]
    assert types == [
        "TicketCommented", "TicketCommented", "AssignmentAccepted", "TicketWorkStarted",
    ]  # fmt: skip
    # The changes of an event inside a window still come from the whole history.
    started = json.loads(window[-1])
    assert ["status", "assigned", "in_progress"] in started["changes"]

    public = [json.loads(line) for line in world.views.export(include_internal=False)]
    assert all(not item["internal"] for item in public)
    everything = list(world.views.export())
    assert len(everything) == len(public) + 1
    assert {json.loads(line)["ticket_id"] for line in everything} == {str(tid)}


def test_export_csv(world: World) -> None:
    tid = world.story()
    export = world.views.export(ticket_id=tid, fmt="csv")
    lines = list(export)
    assert export.digest == _digest(lines)
    rows = list(csv.DictReader(io.StringIO("".join(lines))))
    assert len(rows) == len(world.views.history(tid))
    assert rows[0]["type"] == "TicketOpened" and rows[0]["internal"] == "false"
    assert json.loads(rows[0]["data"])["title"] == "Printer jam"
    with pytest.raises(ValueError):
        world.views.export(fmt="xml")  # type: ignore[arg-type]


def test_history_after_erasure_reads_erased(world: World) -> None:
    tid = world.story()
    world.desk.erase("rita")
    world.views.catch_up()
    opened = world.views.history(tid)[0]
    assert opened.data["title"] == ERASED
    assert ("title", None, ERASED) in [(c.field, c.from_, c.to) for c in opened.changes]
    snapshot = world.views.ticket_as_of(tid)
    assert snapshot is not None and snapshot.ticket.title == ERASED
