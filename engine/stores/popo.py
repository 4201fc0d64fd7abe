"""The in-memory event store for tests: eventsourcing's POPO recorder, with append
conditions (``engine.stores.conditions``) checked under the recorder's own lock.

Select it with ``PERSISTENCE_MODULE=engine.stores.popo``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import eventsourcing.popo as es_popo
from eventsourcing.persistence import ApplicationRecorder, StoredEvent

from engine.stores.conditions import ConditionalRecorder, failed, read_only


class POPOConditionalRecorder(es_popo.POPOApplicationRecorder, ConditionalRecorder):
    """Checks ``conditions`` and inserts under one hold of the recorder's lock."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        conditions = read_only(kwargs.pop("conditions", None), stored_events)
        with self._database_lock:
            for oid, version in conditions.items():
                if self.select_events(_id(oid), gt=version, limit=1):
                    raise failed(oid, version)
            return super().insert_events(stored_events, **kwargs)

    def position_of(self, originator_id: UUID | str, version: int) -> int | None:
        """The notification id of one stored event (its place in the list), or None."""
        with self._database_lock:
            index = self._stored_events_index.get(str(originator_id), {}).get(version)
        return index + 1 if index is not None else None


def _id(oid: str) -> UUID | str:
    try:
        return UUID(oid)
    except ValueError:
        return oid


class Factory(es_popo.POPOFactory):
    def application_recorder(self) -> ApplicationRecorder:
        return POPOConditionalRecorder()
