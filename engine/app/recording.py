"""Recording with a hash chain: the event store the application writes through."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    EventStore,
    Notification,
    ProgrammingError,
    Recording,
    StoredEvent,
)

from engine.app.streams import StreamCache
from engine.domain.base import DomainEvent
from engine.stores.conditions import ConditionalRecorder
from engine.stores.envelope import EnvelopeMapper, decode_envelope


class ChainedEventStore(EventStore[UUID]):
    """Links each new event to the hash of its aggregate's previous stored event.

    Concurrent commands on one aggregate compute the same ``prev_hash`` but only one
    can take the next version, so the chain stays a chain. With a ``StreamCache``, the
    previous event's hash is taken from it when it remembers exactly that version (an
    event's hash never changes), and every successful append is remembered there.
    """

    def __init__(
        self,
        mapper: EnvelopeMapper,
        recorder: Any,
        cache: StreamCache | None = None,
    ) -> None:
        super().__init__(mapper=mapper, recorder=recorder)
        self.envelopes = mapper
        self.cache = cache

    def head_hash(self, aggregate_id: UUID, version: int) -> str | None:
        if version < 1:
            return None
        if self.cache is not None and (known := self.cache.head(aggregate_id, version)):
            return known
        found = self.recorder.select_events(aggregate_id, gt=version - 1, lte=version)
        if not found:
            return None
        head = decode_envelope(found[0].state).get("hash")
        return str(head) if head is not None else None

    def put(
        self, domain_events: Sequence[DomainEventProtocol[UUID]], **kwargs: Any
    ) -> list[Recording[UUID]]:
        if kwargs.get("conditions") and not isinstance(self.recorder, ConditionalRecorder):
            raise ProgrammingError(
                f"{type(self.recorder).__name__} cannot check append conditions: use "
                "PERSISTENCE_MODULE engine.stores.sqlite, engine.stores.popo or the Kafka store"
            )
        heads: dict[UUID, str | None] = {}
        versions: dict[UUID, int] = {}
        stored_events: list[StoredEvent] = []
        for domain_event in domain_events:
            event = cast(DomainEvent, domain_event)
            aggregate = event.originator_id
            if aggregate not in heads:
                heads[aggregate] = self.head_hash(aggregate, event.originator_version - 1)
            stored, heads[aggregate] = self.envelopes.stored(event, heads[aggregate])
            versions[aggregate] = event.originator_version
            stored_events.append(stored)
        ids = self.recorder.insert_events(stored_events, **kwargs) or []
        if self.cache is not None:
            # Recorded: these are now the streams' heads.
            for aggregate, version in versions.items():
                head = heads[aggregate]
                if head is not None:
                    self.cache.remember_head(aggregate, version, head)
        return [
            Recording(
                d,
                Notification(
                    originator_id=s.originator_id,
                    originator_version=s.originator_version,
                    topic=s.topic,
                    state=s.state,
                    id=n,
                ),
            )
            for d, s, n in zip(domain_events, stored_events, ids, strict=True)
        ]
