"""Reads are local and rebuildable: deleting the cache and restarting copies the topic
again, reporting progress, and the answers are identical."""

from __future__ import annotations

import logging
from pathlib import Path
from uuid import uuid4

import pytest

from engine.stores.kafka.recorder import CatchUpProgress
from tests.contract.store_contract import commented, envelope_event, opened
from tests.support.kafka_broker import KafkaRecorders

pytestmark = pytest.mark.kafka

PROGRESS: list[CatchUpProgress] = []


def record_progress(progress: CatchUpProgress) -> None:
    """Named by KAFKA_PROGRESS_TOPIC below: collects what the cache reports."""
    PROGRESS.append(progress)


class TestRebuild(KafkaRecorders):
    def test_a_deleted_cache_is_rebuilt_identically(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        # Record 20 commands of 3 to 150 events each, across tickets and assignments.
        cache_dir = tmp_path / "data"
        factory = self.kafka_factory(KAFKA_DATA_DIR=str(cache_dir))
        recorder = factory.application_recorder()
        topic = recorder.log.settings.topic
        tickets = [uuid4() for _ in range(20)]
        for n, ticket in enumerate(tickets):
            events = [opened(ticket)] + [commented(ticket, v) for v in range(2, 3 + n * 7)]
            events.append(envelope_event("Assignment", uuid4(), 1, "TicketAssignedToQueue"))
            recorder.insert_events(events)
        before = recorder.select_notifications(None, 10_000)
        ticket_before = recorder.select_events(tickets[-1])
        factory.close()
        self.kafka_factories.remove(factory)

        # Delete the cache and start again: it is rebuilt from the topic.
        for path in cache_dir.iterdir():
            if ".cache.sqlite" in path.name:
                path.unlink()
        PROGRESS.clear()
        caplog.set_level(logging.INFO, logger="engine.stores.kafka")
        rebuilt = self.kafka_factory(
            KAFKA_TOPIC=topic,
            KAFKA_DATA_DIR=str(cache_dir),
            KAFKA_PROGRESS_TOPIC=f"{__name__}:record_progress",
        ).application_recorder()

        assert rebuilt.select_notifications(None, 10_000) == before
        assert rebuilt.select_events(tickets[-1]) == ticket_before
        assert rebuilt.max_notification_id() == len(before)
        # Progress was reported, through the callable and the log, up to caught up.
        assert PROGRESS and PROGRESS[-1].caught_up
        assert PROGRESS[-1].events == len(before)
        assert PROGRESS[-1].offset == PROGRESS[-1].end
        assert any("caught up" in r.getMessage() for r in caplog.records)

    def test_a_restart_resumes_where_the_cache_stopped(self, tmp_path: Path) -> None:
        cache_dir = tmp_path / "data"
        factory = self.kafka_factory(KAFKA_DATA_DIR=str(cache_dir))
        recorder = factory.application_recorder()
        topic = recorder.log.settings.topic
        ticket = uuid4()
        recorder.insert_events([opened(ticket), commented(ticket, 2)])
        factory.close()
        self.kafka_factories.remove(factory)

        # Meanwhile another instance records more.
        other = self.kafka_factory(KAFKA_TOPIC=topic).application_recorder()
        other.insert_events([commented(ticket, 3)])

        restarted = self.kafka_factory(
            KAFKA_TOPIC=topic, KAFKA_DATA_DIR=str(cache_dir)
        ).application_recorder()
        assert [e.originator_version for e in restarted.select_events(ticket)] == [1, 2, 3]
        assert [n.id for n in restarted.select_notifications(None, 10)] == [1, 2, 3]
