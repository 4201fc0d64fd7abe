"""Recognising the records the cache holds, and whether a new one continues its chain.

The cache keeps, per offset, the record's event id and chain hash, read from the event
envelope (``engine/stores/envelope.py``: ``event_id``, ``hash``, ``prev_hash``; the
chain is ``engine/integrity/chain.py``). With them a process tells whether the topic
still holds the history it copied: the record at its last cached offset must be the one
it cached, and every new record that is a link of a chain must continue it (its
``prev_hash`` is the cached hash of its aggregate's previous version; version 1 has
none). A record is a link when its value is an envelope of the aggregate its key and
headers name, with hex digests for ``hash`` and ``prev_hash``. Other records (opaque
states of the eventsourcing recorder suite, malformed envelopes) are not links: the
views refuse those that they must read. Content hashes are recomputed by
``ticketing verify``, not here: the link is what tells one history from another.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from engine.stores.kafka.codec import EventRow

_DIGEST = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Mark:
    """What the cache keeps to recognise a record: its event id (None if its value is
    no envelope) and, for a link of a chain, its ``hash`` and ``prev_hash``."""

    event_id: str | None = None
    hash: str | None = None
    prev_hash: str | None = None

    @property
    def is_link(self) -> bool:
        return self.hash is not None


def mark_of(row: EventRow) -> Mark:
    """The record's mark (never raises: a value that is no envelope has an empty one)."""
    if not row.state.startswith(b"{"):
        return Mark()
    try:
        envelope = json.loads(row.state)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return Mark()
    if not isinstance(envelope, dict):
        return Mark()
    event_id = _text(envelope.get("event_id"))
    digest, prev = envelope.get("hash"), envelope.get("prev_hash")
    linked = (
        isinstance(digest, str)
        and _DIGEST.fullmatch(digest) is not None
        and (prev is None or (isinstance(prev, str) and _DIGEST.fullmatch(prev) is not None))
        and envelope.get("aggregate_id") == row.originator_id
        and envelope.get("aggregate_version") == row.originator_version
    )
    if not linked:
        return Mark(event_id)
    return Mark(event_id, str(digest), None if prev is None else str(prev))


def _text(value: object) -> str | None:
    """``value`` if it is text the cache can store (UTF-8, a few hundred characters)."""
    if not isinstance(value, str) or len(value) > 200:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, written as an escape in the JSON
        return None
    return value


MISSING = "missing"


def link_problem(row: EventRow, mark: Mark, previous: str | None) -> str | None:
    """Why ``row`` does not continue its chain, given the hash cached for its
    aggregate's previous version (``MISSING`` if that version is not cached, None if
    it is no link); None if it does (or is no link itself)."""
    if not mark.is_link:
        return None
    version = row.originator_version
    if version <= 1:
        if mark.prev_hash is None:
            return None
        return f"version {version} of aggregate {row.originator_id} links to a previous event"
    if previous == MISSING:
        return (
            f"aggregate {row.originator_id} version {version} follows version "
            f"{version - 1}, which this history does not have"
        )
    if previous is None or previous == mark.prev_hash:
        return None
    return (
        f"aggregate {row.originator_id} version {version} has prev_hash "
        f"{(mark.prev_hash or 'null')[:16]}..., but version {version - 1} in the cache has "
        f"hash {previous[:16]}...: it continues another history"
    )
