"""The embedded store (eventsourcing's SQLite recorder with append conditions,
``engine.stores.sqlite``) passes the eventsourcing library's own recorder conformance
suite, subclassed in a few lines (as eventsourcing's tests do for its SQLite module)."""

from __future__ import annotations

import os
import tempfile

from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteDatastore,
    SQLiteFactory,
    SQLiteProcessRecorder,
    SQLiteTrackingRecorder,
)
from eventsourcing.tests.persistence import (
    ApplicationRecorderTestCase,
    InfrastructureFactoryTestCase,
    ProcessRecorderTestCase,
    TrackingRecorderTestCase,
)
from eventsourcing.utils import Environment

from engine.stores.sqlite import Factory, SQLiteConditionalRecorder
from tests.contract.store_contract import StoreContract


class _TempDB:
    def setUp(self) -> None:  # noqa: N802
        self._dir = tempfile.TemporaryDirectory()
        self.db = os.path.join(self._dir.name, "events.sqlite")
        super().setUp()  # type: ignore[misc]

    def tearDown(self) -> None:  # noqa: N802
        super().tearDown()  # type: ignore[misc]
        self._dir.cleanup()


class TestSQLiteApplicationRecorder(
    _TempDB, ApplicationRecorderTestCase[SQLiteApplicationRecorder]
):
    def create_recorder(self) -> SQLiteApplicationRecorder:
        recorder = SQLiteConditionalRecorder(SQLiteDatastore(self.db))
        recorder.create_table()
        return recorder


class TestSQLiteTrackingRecorder(_TempDB, TrackingRecorderTestCase):
    def create_recorder(self) -> SQLiteTrackingRecorder:
        recorder = SQLiteTrackingRecorder(SQLiteDatastore(self.db))
        recorder.create_table()
        return recorder


class TestSQLiteProcessRecorder(_TempDB, ProcessRecorderTestCase):
    def create_recorder(self) -> SQLiteProcessRecorder:
        recorder = SQLiteProcessRecorder(SQLiteDatastore(self.db))
        recorder.create_table()
        return recorder


class TestSQLiteStoreContract(_TempDB, StoreContract):
    """Our ticket-level store contract: the Kafka store passes the same one."""

    def create_recorder(self) -> SQLiteApplicationRecorder:
        recorder = SQLiteConditionalRecorder(SQLiteDatastore(self.db))
        recorder.create_table()
        return recorder

    def create_peer(self, recorder: object) -> SQLiteApplicationRecorder:
        return SQLiteConditionalRecorder(SQLiteDatastore(self.db))


class TestSQLiteFactory(InfrastructureFactoryTestCase[SQLiteFactory]):
    def expected_factory_class(self) -> type[SQLiteFactory]:
        return Factory

    def expected_aggregate_recorder_class(self) -> type:
        from eventsourcing.sqlite import SQLiteAggregateRecorder

        return SQLiteAggregateRecorder

    def expected_application_recorder_class(self) -> type:
        return SQLiteConditionalRecorder

    def expected_tracking_recorder_class(self) -> type:
        return SQLiteTrackingRecorder

    def expected_process_recorder_class(self) -> type:
        return SQLiteProcessRecorder

    def tracking_recorder_subclass(self) -> type:
        class CustomSQLiteTrackingRecorder(SQLiteTrackingRecorder):
            pass

        return CustomSQLiteTrackingRecorder

    def setUp(self) -> None:
        self._dir = tempfile.TemporaryDirectory()
        self.env = Environment("TestCase")
        self.env[SQLiteFactory.PERSISTENCE_MODULE] = "engine.stores.sqlite"
        self.env[SQLiteFactory.SQLITE_DBNAME] = os.path.join(self._dir.name, "events.sqlite")
        super().setUp()

    def tearDown(self) -> None:
        for key in (SQLiteFactory.PERSISTENCE_MODULE, SQLiteFactory.SQLITE_DBNAME):
            os.environ.pop(key, None)
        super().tearDown()
        self._dir.cleanup()


del ApplicationRecorderTestCase
del TrackingRecorderTestCase
del ProcessRecorderTestCase
del InfrastructureFactoryTestCase
del StoreContract
