"""Our own store contract: ticket-level checks every event store of the engine passes,
on top of the eventsourcing library's recorder suite.

Subclass ``StoreContract`` in a few lines: ``create_recorder()`` gives a recorder on
a fresh, empty store; ``create_peer(recorder)`` may give a second instance on the same
store (another process's view, e.g. a second Kafka recorder with its own cache), else
the checks that need one are skipped. The stored states are our JSON event envelopes
(see ``engine/envelope.py``); the store treats them as opaque bytes.
"""

from __future__ import annotations

import json
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any
from unittest import SkipTest, TestCase
from uuid import UUID, uuid4

from eventsourcing.persistence import ApplicationRecorder, IntegrityError, StoredEvent

from engine.stores.conditions import ConditionFailedError


def envelope_event(
    aggregate_type: str,
    aggregate_id: UUID,
    version: int,
    type_name: str,
    data: dict[str, Any] | None = None,
    correlation_id: UUID | None = None,
) -> StoredEvent:
    """A stored event whose state is an event envelope, as the engine writes it."""
    state = {
        "event_id": str(uuid4()),
        "type": type_name,
        "schema_version": 1,
        "aggregate_type": aggregate_type,
        "aggregate_id": str(aggregate_id),
        "aggregate_version": version,
        "occurred_at": "2026-11-24T09:00:00Z",
        "actor": "agent-7",
        "correlation_id": str(correlation_id or uuid4()),
        "causation_id": None,
        "data": data or {},
    }
    encoded = json.dumps(state, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return StoredEvent(aggregate_id, version, type_name, encoded)


def opened(ticket_id: UUID, title: str = "Printer on fire") -> StoredEvent:
    return envelope_event("Ticket", ticket_id, 1, "TicketOpened", {"title": title})


def commented(ticket_id: UUID, version: int, body: str = "On it") -> StoredEvent:
    return envelope_event("Ticket", ticket_id, version, "TicketCommented", {"body": body})


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``condition`` until true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class StoreContract(TestCase, ABC):
    """What the engine relies on from any event store."""

    @abstractmethod
    def create_recorder(self) -> ApplicationRecorder:
        """A recorder on a fresh, empty store."""

    def create_peer(self, recorder: ApplicationRecorder) -> ApplicationRecorder:
        """Another instance on the same store as ``recorder``."""
        raise SkipTest("this store has no second instance to test with")

    def assert_same_events(
        self, found: Sequence[StoredEvent], expected: Sequence[StoredEvent]
    ) -> None:
        self.assertEqual(
            [(e.originator_id, e.originator_version, e.topic, e.state) for e in found],
            [(e.originator_id, e.originator_version, e.topic, e.state) for e in expected],
        )

    def test_version_conflict_is_refused_and_records_nothing(self) -> None:
        recorder = self.create_recorder()
        ticket = uuid4()
        recorder.insert_events([opened(ticket), commented(ticket, 2)])
        before = recorder.select_notifications(None, 100)

        # Check a stale version is rejected, alone or with a new one.
        with self.assertRaises(IntegrityError):
            recorder.insert_events([commented(ticket, 2, "stale")])
        with self.assertRaises(IntegrityError):
            recorder.insert_events([commented(ticket, 2, "stale"), commented(ticket, 3)])

        # Check nothing was recorded.
        self.assertEqual(recorder.select_notifications(None, 100), before)
        self.assertEqual([e.originator_version for e in recorder.select_events(ticket)], [1, 2])

    def test_multi_aggregate_append_is_all_or_nothing(self) -> None:
        recorder = self.create_recorder()
        ticket, assignment, escalation = uuid4(), uuid4(), uuid4()
        raised = envelope_event("Escalation", escalation, 1, "EscalationRaised")
        recorder.insert_events([raised])

        # One command's events across three aggregates, one of them stale.
        command = [
            opened(ticket),
            envelope_event("Assignment", assignment, 1, "TicketAssignedToQueue"),
            envelope_event("Escalation", escalation, 1, "EscalationRaised"),
        ]
        with self.assertRaises(IntegrityError):
            recorder.insert_events(command)
        self.assertEqual(recorder.select_events(ticket), [])
        self.assertEqual(recorder.select_events(assignment), [])
        self.assertEqual(recorder.max_notification_id(), 1)

        # Without the stale event, all are recorded together.
        ids = recorder.insert_events(command[:2])
        self.assertEqual(len(ids or []), 2)
        self.assert_same_events(recorder.select_events(ticket), command[:1])
        self.assert_same_events(recorder.select_events(assignment), command[1:2])

    def test_notification_ids_strictly_increase_in_commit_order(self) -> None:
        recorder = self.create_recorder()
        tickets = [uuid4() for _ in range(5)]
        returned: list[int] = []
        for version in (1, 2, 3):
            for ticket in tickets:
                event = opened(ticket) if version == 1 else commented(ticket, version)
                returned.extend(recorder.insert_events([event]) or [])
        notifications = recorder.select_notifications(None, 100)
        ids = [n.id for n in notifications]
        self.assertEqual(ids, returned)
        self.assertEqual(ids, sorted(set(ids)))
        self.assertEqual(recorder.max_notification_id(), ids[-1])
        # Commit order: each ticket's versions appear in order.
        for ticket in tickets:
            versions = [n.originator_version for n in notifications if n.originator_id == ticket]
            self.assertEqual(versions, [1, 2, 3])

    def test_reads_its_own_writes(self) -> None:
        recorder = self.create_recorder()
        ticket = uuid4()
        events = [opened(ticket, "Ünïcödé ticket: 🖨️🔥"), commented(ticket, 2)]

        ids = recorder.insert_events(events)

        # Check the events are readable at once, byte for byte.
        self.assert_same_events(recorder.select_events(ticket), events)
        self.assertEqual(recorder.max_notification_id(), (ids or [0])[-1])
        found = recorder.select_notifications(start=(ids or [0])[0], limit=10)
        self.assertEqual([n.id for n in found], ids)
        self.assert_same_events(found, events)

    def test_racing_commands_on_one_ticket_have_one_winner_per_version(self) -> None:
        recorder = self.create_recorder()
        ticket = uuid4()
        recorder.insert_events([opened(ticket)])
        outcomes: list[str] = []
        lock = threading.Lock()

        def comment() -> None:
            # Each agent reads the ticket's version and appends the next one.
            for _ in range(10):
                version = recorder.select_events(ticket, desc=True, limit=1)[0].originator_version
                try:
                    recorder.insert_events([commented(ticket, version + 1)])
                    outcome = "won"
                except IntegrityError:
                    outcome = "lost"
                with lock:
                    outcomes.append(outcome)

        threads = [threading.Thread(target=comment) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        versions = [e.originator_version for e in recorder.select_events(ticket)]
        self.assertEqual(versions, list(range(1, len(versions) + 1)))  # no duplicate, no gap
        self.assertEqual(len(versions) - 1, outcomes.count("won"))

    def test_peer_reads_the_same_notifications(self) -> None:
        recorder = self.create_recorder()
        peer = self.create_peer(recorder)
        ticket = uuid4()
        ids = recorder.insert_events([opened(ticket), commented(ticket, 2)]) or []

        self.assertTrue(wait_until(lambda: peer.max_notification_id() == ids[-1]))
        self.assertEqual(
            peer.select_notifications(None, 10), recorder.select_notifications(None, 10)
        )

    def test_peer_conflicts_are_refused(self) -> None:
        recorder = self.create_recorder()
        peer = self.create_peer(recorder)
        ticket, assignment = uuid4(), uuid4()
        recorder.insert_events([opened(ticket)])

        # The peer may not have read the first append yet: the store must still refuse.
        with self.assertRaises(IntegrityError):
            peer.insert_events(
                [
                    envelope_event("Assignment", assignment, 1, "TicketAssignedToQueue"),
                    opened(ticket),
                ]
            )
        ids = peer.insert_events([commented(ticket, 2)]) or []
        self.assertTrue(wait_until(lambda: recorder.max_notification_id() == ids[-1]))
        self.assertEqual([e.originator_version for e in recorder.select_events(ticket)], [1, 2])
        self.assertEqual(recorder.select_events(assignment), [])

    # --- append conditions (engine.stores.conditions) ----------------------------------

    def test_an_append_on_a_moved_condition_is_refused_and_records_nothing(self) -> None:
        recorder = self.create_recorder()
        ticket, assignment = uuid4(), uuid4()
        recorder.insert_events(
            [opened(ticket), envelope_event("Assignment", assignment, 1, "TicketAssignedToQueue")]
        )
        # The command read the assignment at version 1 and writes only the ticket.
        conditions = {ticket: 1, assignment: 1}
        recorder.insert_events([commented(ticket, 2)], conditions=conditions)
        recorder.insert_events([envelope_event("Assignment", assignment, 2, "TicketAssigned")])

        # Check an append relying on the assignment at version 1 is now refused, whole.
        with self.assertRaises(ConditionFailedError):
            recorder.insert_events([commented(ticket, 3)], conditions={ticket: 2, assignment: 1})
        self.assertEqual([e.originator_version for e in recorder.select_events(ticket)], [1, 2])
        ids = recorder.insert_events([commented(ticket, 3)], conditions={assignment: 2}) or []
        self.assertEqual(len(ids), 1)

    def test_a_condition_moved_by_a_peer_is_refused(self) -> None:
        recorder = self.create_recorder()
        peer = self.create_peer(recorder)
        ticket, assignment = uuid4(), uuid4()
        recorder.insert_events(
            [opened(ticket), envelope_event("Assignment", assignment, 1, "TicketAssignedToQueue")]
        )
        self.assertTrue(wait_until(lambda: bool(peer.select_events(assignment))))
        recorder.insert_events([envelope_event("Assignment", assignment, 2, "TicketAssigned")])

        # The peer may not have read the move yet: the store must still refuse.
        with self.assertRaises(IntegrityError):
            peer.insert_events([commented(ticket, 2)], conditions={assignment: 1})
        self.assertTrue(wait_until(lambda: len(peer.select_events(assignment)) == 2))
        self.assertEqual([e.originator_version for e in peer.select_events(ticket)], [1])

    def test_the_position_of_a_stored_event_is_its_notification_id(self) -> None:
        recorder = self.create_recorder()
        ticket = uuid4()
        ids = recorder.insert_events([opened(ticket), commented(ticket, 2)]) or []
        position_of = getattr(recorder, "position_of", None)
        if position_of is None:
            raise SkipTest("this store cannot name an event's position")
        self.assertEqual([position_of(ticket, 1), position_of(ticket, 2)], list(ids))
        self.assertIsNone(position_of(ticket, 3))
