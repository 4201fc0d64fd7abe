"""Errors of the Kafka event store (re-exported by ``engine.stores.kafka``)."""

from __future__ import annotations

from eventsourcing.persistence import OperationalError, PersistenceError


class StoreUnavailableError(OperationalError):
    """The broker could not be reached, or an append was not confirmed before its
    deadline. The API answers 503. Retrying the same command is safe: if the first
    attempt was recorded after all, the retry meets a version conflict (409)."""


class CacheDivergedError(StoreUnavailableError):
    """The topic no longer holds what the local cache copied from it (the topic was
    deleted and recreated, or the broker lost data). Appends are refused; reads keep
    answering from the cache. Move the cache file aside to rebuild it from the topic,
    if the topic as it is now is the one to trust."""


class UnsafeTopicError(PersistenceError):
    """The event topic exists with settings that could lose events (finite retention,
    compaction) or break the global order (more than one partition). The message names
    the setting found and the override key, where an override exists."""
