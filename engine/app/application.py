"""The eventsourcing Application the desk runs on: its mapper (the JSON envelope with
sealed personal fields), its event store (hash-chained appends), and the one way events
are saved (one atomic append per call, listeners told afterwards).

Loading is ``engine.app.repository``; deciding and committing commands is
``engine.app.runner``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import EventStore, Mapper, Recording

from engine.app.metrics import Metrics
from engine.app.recording import ChainedEventStore
from engine.app.repository import Repository
from engine.app.streams import StreamCache
from engine.domain.base import DomainEvent
from engine.domain.commands.tickets import DeskRules
from engine.domain.priority import PriorityMatrix
from engine.integrity.keystore import KeyStore, MemoryKeyStore
from engine.stores.conditions import Conditions
from engine.stores.envelope import EnvelopeMapper
from engine.stores.group_commit import GroupCommit


class TicketingApp(Application[UUID]):
    """The store, the mapper and the desk's rules; ``aggregates`` reads its streams."""

    name = "ticketing"

    def __init__(
        self,
        env: dict[str, str] | None = None,
        matrix: PriorityMatrix | None = None,
        reopen_window: timedelta = timedelta(days=7),
        keys: KeyStore | None = None,
    ) -> None:
        # Personal data is sealed with per-subject keys (crypto-shredding).
        self.keys: KeyStore = keys if keys is not None else MemoryKeyStore()
        # Called after every successful append (the views wake up instead of polling).
        self.listeners: list[Callable[[], None]] = []
        # Folded states and chain heads of streams used lately (see engine.app.streams).
        self.streams = StreamCache()
        # Append sizes and commit latency, for /metrics (engine.app.metrics).
        self.metrics = Metrics()
        super().__init__(env)
        if isinstance(batches := getattr(self.recorder, "batches", None), GroupCommit):
            batches.observe = self.metrics.commit_appends.observe
        self.rules = DeskRules(matrix=matrix or PriorityMatrix(), reopen_window=reopen_window)
        self.aggregates = Repository(self)

    def save(
        self, *objs: Any, conditions: Conditions | None = None, **kwargs: Any
    ) -> list[Recording[UUID]]:
        """As ``Application.save``; our own events (the usual case) skip the library's
        per-object protocol checks, which cost more than the rest of collecting them.
        ``conditions``: streams the append relies on but does not write, and the version
        each must still be at when it commits (``engine.stores.conditions``)."""
        started = time.perf_counter()
        if conditions:
            recordings = self.events.put(objs, tracking=None, conditions=conditions)
            self._notify(recordings)
        elif (
            kwargs
            or self.snapshots is not None
            or not all(isinstance(o, DomainEvent) for o in objs)
        ):
            recordings = super().save(*objs, **kwargs)
        else:
            recordings = self.events.put(objs, tracking=None)
            self._notify(recordings)
        self.metrics.observe_append(len(recordings), started)
        return recordings

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        for listener in self.listeners:
            listener()

    def construct_mapper(self) -> Mapper[UUID]:
        return EnvelopeMapper(self.keys)

    def construct_event_store(self) -> EventStore[UUID]:
        mapper = self.mapper
        assert isinstance(mapper, EnvelopeMapper)
        return ChainedEventStore(mapper, self.recorder, self.streams)
