"""Errors of the Kafka event store (re-exported by ``engine.stores.kafka``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import OperationalError, PersistenceError

REBUILD_COMMAND = "ticketing cache rebuild"


class StoreUnavailableError(OperationalError):
    """The broker could not be reached, or an append was not confirmed before its
    deadline. The API answers 503. Retrying the same command is safe: if the first
    attempt was recorded after all, the retry meets a version conflict (409)."""


@dataclass(frozen=True)
class Divergence:
    """Where the topic and the cache part ways: the ``offset`` looked at, the record
    the cache holds there (``cached``: its event id, or a description) and what the
    topic holds instead (``found``), and how far the cache had read (``cached_up_to``,
    the next offset it would read) and how far the topic goes (``topic_end``)."""

    topic: str
    cache: str
    cause: str
    offset: int | None = None
    cached: str | None = None
    found: str | None = None
    cached_up_to: int | None = None
    topic_end: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "cache": self.cache,
            "offset": self.offset,
            "cached": self.cached,
            "found": self.found,
            "cached_up_to": self.cached_up_to,
            "topic_end": self.topic_end,
            "cause": self.cause,
            "fix": FIX,
        }


FIX = (
    f"if the topic as it is now is the history to trust, stop this process and run "
    f"`{REBUILD_COMMAND}` with its settings (it rebuilds the cache and the views from the "
    "topic), then start it again; otherwise restore the topic from a backup"
)


class CacheDivergedError(StoreUnavailableError):
    """The topic no longer holds the history the local cache copied from it: the record
    at the cache's last offset is another (the topic was deleted and recreated, or the
    broker lost its data and the topic was refilled), the topic ends before it, or a new
    record does not continue its aggregate's hash chain (another producer). The process
    stops serving that history: appends and reads raise this (the API answers 503 with
    the cause and the fix, ``GET /health`` reports ``diverged``) until the cache is
    rebuilt (``ticketing cache rebuild``) or the topic restored. The one error for it;
    ``divergence`` says where."""

    def __init__(self, divergence: Divergence) -> None:
        self.divergence = divergence
        where = "" if divergence.offset is None else f" at offset {divergence.offset}"
        super().__init__(
            f"topic {divergence.topic!r} diverged from the cache {divergence.cache}{where}: "
            f"{divergence.cause}. This process stops serving that history (commands and "
            f"reads are refused). Fix: {FIX}."
        )


class UnsafeTopicError(PersistenceError):
    """A topic exists with settings the store cannot work with: the event topic with
    settings that could lose events (finite retention, compaction), or any of the
    store's topics with more than one partition (Tansu creates four when a client asks
    for a missing topic's metadata). The message names the topic, the setting found,
    and the command (or the override key) that fixes it."""
