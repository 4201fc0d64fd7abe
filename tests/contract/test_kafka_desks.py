"""Several desks (tenants) on one Kafka cluster (issue #13, "Past one writer"): each desk,
chosen by TICKETING_DESK, has its own topic, auxiliary topics, transactional id and
elected writer; their data never mixes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.domain.base import NotFoundError
from engine.settings import Settings
from engine.stores.kafka.recorder import KafkaApplicationRecorder
from tests.unit.givens import DeskWorld, desk_world

pytestmark = pytest.mark.kafka


@pytest.fixture
def desks(kafka_bootstrap: str, tmp_path: Path) -> Iterator[list[DeskWorld]]:
    run = uuid.uuid4().hex[:6]
    worlds: list[DeskWorld] = []
    try:
        for name in (f"north-{run}", f"south-{run}"):
            settings = Settings(
                data_dir=tmp_path / name, desk=name, kafka_bootstrap_servers=kafka_bootstrap
            )
            env = settings.store_env() | {"KAFKA_STARTUP_TIMEOUT_MS": "20000"}
            worlds.append(desk_world(env))
        yield worlds
    finally:
        for world in worlds:
            world.app.close()


def recorder(w: DeskWorld) -> KafkaApplicationRecorder:
    assert isinstance(w.app.recorder, KafkaApplicationRecorder)
    return w.app.recorder


def test_two_desks_on_one_broker_have_their_own_topics_and_writers(
    desks: list[DeskWorld],
) -> None:
    north, south = (recorder(w).log for w in desks)
    assert north.settings.topic.startswith("ticketing.north-")
    assert south.settings.topic.startswith("ticketing.south-")
    names = [
        {s.topic, s.requests_topic, s.replies_topic, s.leases_topic, s.transactional_id}
        for s in (north.settings, south.settings)
    ]
    assert not names[0] & names[1]
    # Each desk elected its own writer: both are active at once, neither fenced.
    assert (north.writer.state, south.writer.state) == ("active", "active")


def test_two_desks_data_never_mixes(desks: list[DeskWorld]) -> None:
    north, south = desks
    mine = north.open()
    theirs = south.open()
    assert north.app.aggregates.ticket(mine).id == mine
    with pytest.raises(NotFoundError):
        south.app.aggregates.ticket(mine)
    with pytest.raises(NotFoundError):
        north.app.aggregates.ticket(theirs)
    # Both desks still append: neither writer was fenced by the other.
    opened = [north.open(), south.open()]
    logs = [
        {n.originator_id for n in w.app.recorder.select_notifications(1, 10_000)} for w in desks
    ]
    assert {mine, opened[0]} <= logs[0] and not {theirs, opened[1]} & logs[0]
    assert {theirs, opened[1]} <= logs[1] and not {mine, opened[0]} & logs[1]
