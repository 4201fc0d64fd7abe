"""Conditions on an append: streams the append does not write, but whose versions the
command relied on (an If-Match covers the ticket and its assignment; a command may write
only one of them).

An append with ``conditions={aggregate_id: version}`` is recorded only if each of those
streams is still at exactly that version when the append commits; otherwise nothing is
recorded and ``ConditionFailedError`` (an ``IntegrityError``) is raised. The check runs
inside the store's own atomic step (the SQLite transaction, the POPO lock, the Kafka
writer's batch), so no change can slip in between the check and the commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from uuid import UUID

from eventsourcing.persistence import IntegrityError, StoredEvent

Conditions = Mapping[UUID, int]


class ConditionFailedError(IntegrityError):
    """A stream the append relied on moved on since the command read it."""


class ConditionalRecorder:
    """Marks an application recorder whose ``insert_events`` honours ``conditions``."""

    checks_conditions = True


def read_only(conditions: Conditions | None, events: Sequence[StoredEvent]) -> dict[str, int]:
    """The conditions on streams the append does not write (a written stream is guarded
    already: its next version can be taken once), keyed by the id as text."""
    if not conditions:
        return {}
    written = {str(e.originator_id) for e in events}
    return {str(k): v for k, v in conditions.items() if str(k) not in written}


def failed(aggregate_id: str, version: int) -> ConditionFailedError:
    return ConditionFailedError(
        f"aggregate {aggregate_id} moved on from version {version} before the append committed"
    )


def next_versions(conditions: Mapping[str, int]) -> Iterable[tuple[str, int]]:
    """The (id, version) keys that must stay free for ``conditions`` to hold: a stream is
    at version v exactly while v + 1 is not taken (versions are contiguous)."""
    return ((oid, version + 1) for oid, version in conditions.items())
