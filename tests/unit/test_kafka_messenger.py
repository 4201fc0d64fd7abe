"""The messenger producer is replaced when it wedges (#13 item 1): a failed or
timed-out send, or a send left unanswered past the request timeout, has the next
send go through a new producer; the old one is closed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError

from engine.stores.kafka import clients
from engine.stores.kafka.settings import KafkaSettings


class Sent:
    """A send's future: answered now, never, or with an error."""

    def __init__(self, outcome: str) -> None:
        self.outcome = outcome
        self.errbacks: list[Any] = []

    def get(self, timeout: float) -> Any:
        if self.outcome == "ok":
            return type("Metadata", (), {"offset": 7})()
        raise KafkaTimeoutError(f"Timeout after waiting for {timeout} secs.")

    def add_callback(self, fn: Any) -> None:
        if self.outcome == "ok":
            fn(None)

    def add_errback(self, fn: Any) -> None:
        self.errbacks.append(fn)


class FakeProducer:
    def __init__(self, outcome: str) -> None:
        self.outcome = outcome
        self.sent: list[Sent] = []
        self.closed = False

    def send(self, topic: str, **kwargs: Any) -> Sent:
        self.sent.append(Sent(self.outcome))
        return self.sent[-1]

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


@pytest.fixture
def producers(monkeypatch: pytest.MonkeyPatch) -> list[FakeProducer]:
    """Every producer the messenger creates; the first wedged, later ones fine."""
    made: list[FakeProducer] = []

    def new_producer(settings: KafkaSettings, role: str, **overrides: Any) -> FakeProducer:
        made.append(FakeProducer("never" if not made else "ok"))
        return made[-1]

    monkeypatch.setattr(clients, "new_producer", new_producer)
    return made


def settings(tmp_path: Path) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers="127.0.0.1:9",
        topic="t",
        cache_path=tmp_path / "c.sqlite",
        local_db_path=tmp_path / "l.sqlite",
        writer_id="w",
        transactional_id="t.writer",
        writer_group_id="t.writer",
    )


def wait_closed(producer: FakeProducer) -> bool:
    deadline = time.monotonic() + 5
    while not producer.closed and time.monotonic() < deadline:
        time.sleep(0.01)
    return producer.closed


def test_a_timed_out_send_has_the_next_one_use_a_new_producer(
    producers: list[FakeProducer], tmp_path: Path
) -> None:
    messenger = clients.Messenger(settings(tmp_path))
    with pytest.raises(KafkaTimeoutError):
        messenger.send("t.requests", b"k", b"v", timeout=0.01)
    assert messenger.send("t.requests", b"k", b"v", timeout=1.0) == 7
    assert len(producers) == 2 and messenger.replacements == 1
    assert wait_closed(producers[0])


def test_an_unanswered_heartbeat_has_the_producer_replaced(
    producers: list[FakeProducer], tmp_path: Path
) -> None:
    s = settings(tmp_path)
    messenger = clients.Messenger(s)
    messenger.send_async("t.replies", b"k", b"beat")
    # Not yet past the request timeout: the same producer is still used.
    messenger.send_async("t.replies", b"k", b"beat")
    assert len(producers) == 1
    # Check that once the oldest send is older than the request timeout, the next
    # send goes through a new producer (the clock is moved, not waited for).
    messenger._unanswered = {n: t - s.request_timeout - 1 for n, t in messenger._unanswered.items()}
    assert messenger.send("t.requests", b"k", b"v", timeout=1.0) == 7
    assert len(producers) == 2 and messenger.replacements == 1


def test_a_failed_async_send_has_the_producer_replaced(
    producers: list[FakeProducer], tmp_path: Path
) -> None:
    messenger = clients.Messenger(settings(tmp_path))
    messenger.send_async("t.replies", b"k", b"beat")
    for errback in producers[0].sent[0].errbacks:
        errback(KafkaTimeoutError("Expiring 1 record(s)"))
    assert messenger.send("t.requests", b"k", b"v", timeout=1.0) == 7
    assert len(producers) == 2
