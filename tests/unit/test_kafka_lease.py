"""The writer lease counts a holder's silence only while the broker answers
(#13 items 1, 6): a broker fault silences every heartbeat, and must not make every
instance claim the role at once when the broker is back."""

from __future__ import annotations

import time

from engine.stores.kafka.codec import LeaseRecord
from engine.stores.kafka.lease import LeaseView

LEASE = 1.0


def held_by(writer: str) -> LeaseView:
    view = LeaseView()
    view.apply(LeaseRecord("claim", writer, 1), offset=0)
    return view


def test_a_holder_silent_for_the_lease_while_the_broker_answers_can_be_replaced() -> None:
    view = held_by("a")
    now = time.monotonic()
    view.last_seen = now - 2 * LEASE
    view.heard_from_broker(now, LEASE)
    assert view.claimable(LEASE)


def test_a_heard_heartbeat_keeps_the_role() -> None:
    view = held_by("a")
    view.heard_from_broker(time.monotonic(), LEASE)
    view.heartbeat("a", 1)
    assert not view.claimable(LEASE)


def test_while_the_broker_is_silent_the_role_is_not_claimable() -> None:
    view = held_by("a")
    now = time.monotonic()
    view.last_seen = now - 10 * LEASE
    view.heard_at = now - LEASE  # the broker last answered a lease ago
    assert not view.claimable(LEASE)


def test_after_a_broker_silence_the_holder_gets_a_whole_lease_again() -> None:
    view = held_by("a")
    now = time.monotonic()
    view.last_seen = view.heard_at = now - 10 * LEASE  # nothing heard for ten leases
    view.heard_from_broker(now, LEASE)  # the broker answers again
    assert view.last_seen >= now
    assert not view.claimable(LEASE)


def test_a_short_gap_between_answers_excuses_nothing() -> None:
    view = held_by("a")
    now = time.monotonic()
    view.last_seen = now - 2 * LEASE
    view.heard_at = now - LEASE / 4
    view.heard_from_broker(now, LEASE)
    assert view.last_seen == now - 2 * LEASE
    assert view.claimable(LEASE)


def test_a_free_or_resigned_role_is_claimable_whatever_the_broker_did() -> None:
    view = LeaseView()
    view.heard_at = time.monotonic() - 10 * LEASE
    assert view.claimable(LEASE)
    view = held_by("a")
    view.apply(LeaseRecord("resign", "a", 1), offset=1)
    view.heard_at = time.monotonic() - 10 * LEASE
    assert view.claimable(LEASE)
