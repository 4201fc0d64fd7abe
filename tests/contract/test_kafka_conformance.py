"""The Kafka store passes the eventsourcing library's own recorder conformance suite,
subclassed in a few lines (as the library's tests do for its SQLite module).

Each recorder gets a fresh topic and cache. Tracking and process recorders are
local SQLite state in the Kafka mode (see docs/kafka.md), tested here through the
Kafka factory all the same.
"""

from __future__ import annotations

import pytest
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    ProcessRecorder,
    TrackingRecorder,
)
from eventsourcing.sqlite import (
    SQLiteAggregateRecorder,
    SQLiteProcessRecorder,
    SQLiteTrackingRecorder,
)
from eventsourcing.tests.persistence import (
    AggregateRecorderTestCase,
    ApplicationRecorderTestCase,
    InfrastructureFactoryTestCase,
    NonInterleavingNotificationIDsBaseCase,
    ProcessRecorderTestCase,
    TrackingRecorderTestCase,
)
from eventsourcing.utils import Environment

from engine.stores.kafka.recorder import (
    KafkaAggregateRecorder,
    KafkaApplicationRecorder,
    KafkaFactory,
)
from tests.support.kafka_broker import KafkaRecorders, recorder_env

pytestmark = pytest.mark.kafka


class TestKafkaAggregateRecorder(KafkaRecorders, AggregateRecorderTestCase):
    def create_recorder(self) -> AggregateRecorder:
        return self.kafka_factory().aggregate_recorder()


class TestKafkaApplicationRecorder(
    KafkaRecorders, ApplicationRecorderTestCase[ApplicationRecorder]
):
    def create_recorder(self) -> ApplicationRecorder:
        return self.kafka_factory().application_recorder()

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()


class TestKafkaApplicationRecorderWithTextIDs(TestKafkaApplicationRecorder):
    def create_recorder(self) -> ApplicationRecorder:
        return self.kafka_factory(ORIGINATOR_ID_TYPE="text").application_recorder()

    def new_originator_id(self) -> str:
        return f"ticket-{super().new_originator_id()}"


class TestKafkaNonInterleavingNotificationIDs(
    KafkaRecorders, NonInterleavingNotificationIDsBaseCase
):
    def create_recorder(self) -> ApplicationRecorder:
        return self.kafka_factory().application_recorder()


class TestKafkaTrackingRecorder(KafkaRecorders, TrackingRecorderTestCase):
    def create_recorder(self) -> TrackingRecorder:
        return self.kafka_factory().tracking_recorder()


class TestKafkaProcessRecorder(KafkaRecorders, ProcessRecorderTestCase):
    def create_recorder(self) -> ProcessRecorder:
        return self.kafka_factory().process_recorder()


class TestKafkaInfrastructureFactory(KafkaRecorders, InfrastructureFactoryTestCase[KafkaFactory]):
    def expected_factory_class(self) -> type[KafkaFactory]:
        return KafkaFactory

    def expected_aggregate_recorder_class(self) -> type[AggregateRecorder]:
        return KafkaAggregateRecorder

    def expected_application_recorder_class(self) -> type[ApplicationRecorder]:
        return KafkaApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[TrackingRecorder]:
        return SQLiteTrackingRecorder

    class TrackingRecorderSubclass(SQLiteTrackingRecorder):
        pass

    def tracking_recorder_subclass(self) -> type[TrackingRecorder]:
        return self.TrackingRecorderSubclass

    def expected_process_recorder_class(self) -> type[ProcessRecorder]:
        return SQLiteProcessRecorder

    def setUp(self) -> None:
        self.env = Environment("TestCase", recorder_env(self.kafka_bootstrap, self.kafka_dir))
        super().setUp()

    def test_snapshots_are_local(self) -> None:
        recorder = self.factory.aggregate_recorder("snapshots")
        self.assertIsInstance(recorder, SQLiteAggregateRecorder)

    def test_construct_raises_environment_error_when_bootstrap_servers_missing(self) -> None:
        del self.env["KAFKA_BOOTSTRAP_SERVERS"]
        with self.assertRaises(EnvironmentError) as cm:
            InfrastructureFactory.construct(self.env)
        self.assertIn(
            "TESTCASE_KAFKA_BOOTSTRAP_SERVERS, KAFKA_BOOTSTRAP_SERVERS", str(cm.exception)
        )


del AggregateRecorderTestCase
del ApplicationRecorderTestCase
del NonInterleavingNotificationIDsBaseCase
del TrackingRecorderTestCase
del ProcessRecorderTestCase
del InfrastructureFactoryTestCase
