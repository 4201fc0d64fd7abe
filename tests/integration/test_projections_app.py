"""The views on the real application's log (chained envelopes, sealed personal data)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from engine.domain.commands.directory import EraseSubject
from engine.domain.commands.tickets import Assign, Comment, Resolve, Start
from engine.domain.priority import Level
from engine.integrity.personal import ERASED
from engine.projections import Views
from tests.unit.givens import desk_world


def test_views_follow_the_application(tmp_path: Path) -> None:
    world = desk_world()
    desk, lead = world.desk, world.lead
    started = world.clock.now
    tid = world.open(impact=Level.HIGH, urgency=Level.HIGH)
    desk.send(lead, Assign(ticket_id=tid, agent_id=world.ann.agent_id))
    desk.send(world.ann, Comment(ticket_id=tid, body="looking", internal=True))
    result = desk.send(world.ann, Start(ticket_id=tid))

    views = Views(world.app.recorder, tmp_path, keys=world.app.keys)
    views.start()
    try:
        # Read-your-writes: the command's position is the one to wait for.
        views.wait(result.position, timeout=5)
        row = views.ticket(tid)
        assert row is not None
        assert (row.status, row.priority, row.assignee_name) == ("in_progress", "P1", "Ann")
        assert row.title == "VPN drops every hour"  # unsealed with the app's keys
        queues = {q.name: q for q in views.queues()}
        assert queues["service-desk"].by_status == {"in_progress": 1}

        history = views.history(tid)
        assert [h.type for h in history][:3] == [
            "TicketOpened", "TicketTriaged", "AssignedToQueue",
        ]  # fmt: skip
        assert len(views.history(tid, include_internal=False)) == len(history) - 1
        snapshot = views.ticket_as_of(tid)
        assert snapshot is not None and snapshot.status == "in_progress"

        done = desk.send(
            world.ann, Resolve(ticket_id=tid, resolution_code="fixed", note="restarted the router")
        )
        views.wait(done.position, timeout=5)
        report = views.service_report(started, world.clock.now + timedelta(minutes=1))
        assert (report.opened, report.resolved) == (1, 1)

        # Erasure reaches the views too.
        erased = desk.send(
            world.admin, EraseSubject(subject_id=world.rita.id, legal_basis="GDPR art. 17")
        )
        views.wait(erased.position, timeout=5)
        row = views.ticket(tid)
        assert row is not None and row.title == ERASED
        assert views.history(tid)[0].data["title"] == ERASED
    finally:
        views.close()
