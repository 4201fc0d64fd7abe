"""engine.app.streams.StreamCache: a newer fold or head is never replaced by an older one,
a head is only given for the version it belongs to, and the cache stays bounded."""

from __future__ import annotations

from uuid import uuid4

from engine.app.streams import StreamCache


def test_an_older_state_never_replaces_a_newer_one() -> None:
    cache = StreamCache()
    stream = uuid4()
    cache.remember_state(stream, "ticket", 5, "five")
    cache.remember_state(stream, "ticket", 4, "four")  # a slower reader finishing late
    assert cache.state(stream, "ticket") == (5, "five")
    cache.remember_state(stream, "ticket", 6, "six")
    assert cache.state(stream, "ticket") == (6, "six")
    assert cache.state(stream, "other fold") is None


def test_a_head_is_only_given_for_its_own_version() -> None:
    cache = StreamCache()
    stream = uuid4()
    cache.remember_head(stream, 3, "h3")
    assert cache.head(stream, 3) == "h3"
    assert cache.head(stream, 2) is None and cache.head(stream, 4) is None
    cache.remember_head(stream, 2, "h2")
    assert cache.head(stream, 3) == "h3"


def test_the_cache_is_bounded_and_forgets_states_on_demand() -> None:
    cache = StreamCache(max_streams=10)
    streams = [uuid4() for _ in range(25)]
    for n, stream in enumerate(streams):
        cache.remember_state(stream, "ticket", 1, n)
        cache.remember_head(stream, 1, str(n))
    assert cache.state(streams[-1], "ticket") == (1, 24)
    assert cache.head(streams[-1], 1) == "24"
    assert sum(cache.state(s, "ticket") is not None for s in streams) <= 10
    cache.forget_states()
    assert cache.state(streams[-1], "ticket") is None
    assert cache.head(streams[-1], 1) == "24"  # heads hold no personal data
