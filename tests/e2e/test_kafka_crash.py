"""Crash and fault safety on the Kafka store: broker outages and SIGKILLs under load.

Several client threads send commands (open, comment, triage, assign, start) to a
``ticketing serve`` on Kafka, each command with a unique Idempotency-Key; half of
the clients send a command refused with 503 again with the same key until it is
answered otherwise, the others move on (``tests/e2e/load.py``). Meanwhile:

- **outage** (Tansu behind a proxy, ``controlled_broker``): the broker is cut off
  several times at seeded random moments, for a few seconds each, then restored with
  its data; the server is never restarted;
- **kills** (any broker, Apache Kafka too): the server is SIGKILLed several times and
  restarted on the same topic, alternately with its local cache kept and deleted.

What the clients may see, and what it means with Kafka transactions. The writer
commits each batch of appends in one Kafka transaction and answers only after the
commit returned. An append is started only if its deadline leaves the whole commit
timeout, and its caller waits at most the append timeout plus a grace second
(``kafka_log.GRACE``), so:

- a **2xx** means the transaction committed: the command is in the log exactly once;
- a **503** means the commit was not confirmed in time. Either the transaction never
  reached the broker, or was aborted (the next writer's ``init_transactions`` fences
  and aborts a transaction left open): nothing is recorded. Or the broker committed
  it and the confirmation was lost (the proxy cut the connection after the commit
  request left): the whole command is recorded, once, and a retry with its key
  answers the first result (``replayed``);
- **no answer**: with the server alive (the outage test) this never happens, every
  request is answered within ``FAIL_FAST_S``: a hang is a failure. With a SIGKILL, the
  request died with the process, at any point of a transaction: as for a 503, the
  command is absent or whole once (a killed writer's open transaction is aborted when
  the restarted writer fences it).

Afterwards the log must show every 2xx command once, whole, at the version it
answered; every refused (409) command absent; every 503 or unanswered command absent
or whole once; contiguous versions per aggregate; strictly increasing positions. Then
every 503 and unanswered command is retried with its key: it answers its recorded
result, or is recorded now, once. Finally the views, caught up, equal a rebuild by a
server of its own with a fresh cache and no views, on the same topic.

On Tansu, an aborted transaction's records are shown to read_committed readers as if
committed (``shared/KAFKA.md``): there a 503 or unanswered command whose transaction
was aborted shows up in the log too, whole, or (if the cut or the kill fell between
two of its produce requests) as the front part of its events without its
CommandProcessed. The checks let the latter through on Tansu only, and report it:
it can never be an acknowledged command, whose CommandProcessed is in the log.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.load import (
    PROBLEM_JSON,
    Load,
    by_key,
    check_acknowledged,
    check_exactly_once,
    check_log,
    compare_with_a_rebuild,
    retry_unanswered,
)
from tests.e2e.proc import Server, seed
from tests.support.kafka_broker import ControlledBroker

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(240)]

SEED = int(os.environ.get("KAFKA_CRASH_SEED", "20261124"))
CUTS = int(os.environ.get("KAFKA_CRASH_CUTS", "3"))
KILLS = int(os.environ.get("KAFKA_CRASH_KILLS", "4"))
WORKERS = 6
RETRYING = frozenset({0, 2, 4})  # these workers resend a 503 with the same key
UP_TIME = (0.5, 2.0)  # load between two faults (seconds, drawn uniformly)
OUTAGE_TIME = (1.0, 4.5)  # how long the broker stays cut off once a 503 was seen

# The store's deadlines in these tests (KAFKA_*_MS), and the bound they give: an
# append is answered within APPEND_TIMEOUT_S + GRACE_S; FAIL_FAST_S adds room for
# HTTP and a busy machine. A request not answered within CLIENT_TIMEOUT_S hangs.
APPEND_TIMEOUT_S = 3.0
COMMIT_TIMEOUT_S = 1.5
REQUEST_TIMEOUT_S = 1.0
GRACE_S = 1.0
FAIL_FAST_S = APPEND_TIMEOUT_S + GRACE_S + 3.0
CLIENT_TIMEOUT_S = 30.0
RECOVERY_S = 60.0  # the engine must write again by itself within this after a fault
CACHE_FILES = ("kafka-cache.sqlite*", "*.local.sqlite*")


def kafka_env(bootstrap: str, topic: str, key_store: Path, lease_ms: int) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_TOPIC": topic,
        "KAFKA_APPEND_TIMEOUT_MS": str(int(APPEND_TIMEOUT_S * 1000)),
        "KAFKA_COMMIT_TIMEOUT_MS": str(int(COMMIT_TIMEOUT_S * 1000)),
        "KAFKA_REQUEST_TIMEOUT_MS": str(int(REQUEST_TIMEOUT_S * 1000)),
        "KAFKA_LEASE_TIMEOUT_MS": str(lease_ms),
        # The restarted and the rebuilding servers share the data subjects' keys.
        "TICKETING_KEY_STORE": str(key_store),
        # No periodic checkpoints: the log holds the clients' commands and the clock's.
        "TICKETING_CHECKPOINT_INTERVAL_S": "0",
    }


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``condition`` until true; return when it became true (monotonic)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout:.0f}s: {what}"
        time.sleep(0.05)
    return time.monotonic()


def written_since(load: Load, since: float) -> bool:
    """Whether a command sent after ``since`` was recorded (a 2xx, not a replay)."""
    return any(
        t.status is not None and t.status < 300 and not t.replayed and t.sent_at >= since
        for _, t in load.tries()
    )


def refused_since(load: Load, since: float) -> bool:
    return any(t.status == 503 and t.sent_at >= since for _, t in load.tries())


@dataclass
class Fault:
    began: float  # monotonic: the broker cut off, or the server killed
    ended: float  # the broker restored, or the server answering again
    recovered: float  # the first command sent after ``ended`` recorded


def check_answers(load: Load, *, cut_off_allowed: bool) -> None:
    """Every try answered within FAIL_FAST_S, with a 2xx or a problem (409, 503);
    none unanswered, but where the server was killed (``cut_off_allowed``)."""
    slow = [
        (a.path, t.status, round(t.seconds, 1)) for a, t in load.tries() if t.seconds > FAIL_FAST_S
    ]
    assert not slow, f"answered after more than {FAIL_FAST_S}s: {slow[:10]}"
    for a, t in load.tries():
        if t.status is None:
            assert cut_off_allowed, f"{a.path}: no answer ({t.seconds:.1f}s)"
        elif t.status >= 300:
            assert t.status in (409, 503), (a.path, t.status)
            assert t.content_type.startswith(PROBLEM_JSON), (a.path, t.content_type)


def check_the_log(server: Server, load: Load, seeded: int, *, tansu: bool) -> str:
    """The log after the faults, then after retrying every command that failed."""
    events = server.events()
    leaked = check_log(events, seeded, aborted_leak=tansu)
    check_acknowledged(events, load.attempts, unavailable_ok=True)
    check_exactly_once(events, load.attempts)
    failed = [a for a in load.attempts if a.tries and (a.status is None or a.status == 503)]
    committed = len(set(by_key(events)) & {a.key for a in failed})

    # Retry every command that got a 503 or no answer, with its key.
    recorded = retry_unanswered(server, load.attempts, also=lambda a: a.status == 503)
    events = server.events()
    assert check_log(events, seeded, aborted_leak=tansu) == leaked
    check_acknowledged(events, load.attempts)
    check_exactly_once(events, load.attempts)
    recorded_keys = set(by_key(events))
    assert recorded_keys == {a.key for a in load.acknowledged}, "a recorded command unanswered"
    slowest = max(t.seconds for _, t in load.tries() if t.status is not None)
    return (
        f"{load.summary()}; slowest answer {slowest:.2f}s; {len(load.acknowledged)} "
        f"acknowledged; {len(failed)} failed (503 or no answer): {committed} had committed, "
        f"{len(recorded)} recorded on retry; {len(events)} events"
        + (f"; parts of aborted transactions shown by Tansu: {leaked}" if leaked else "")
    )


def test_broker_outages_under_load_fail_fast_and_the_engine_recovers_by_itself(
    controlled_broker: ControlledBroker, tmp_path: Path
) -> None:
    topic = f"ticketing.crash.{uuid.uuid4().hex[:10]}"
    env = kafka_env(controlled_broker.bootstrap, topic, tmp_path / "keys.sqlite", 6_000)
    server = Server(tmp_path / "data", env=env).start(timeout=60)
    faults: list[Fault] = []
    try:
        people = seed(server)
        seeded = server.events()[-1]["position"]
        load = Load(
            server, people, SEED, WORKERS, client_timeout=CLIENT_TIMEOUT_S, retrying=RETRYING
        ).start()
        rnd = random.Random(SEED)
        try:
            recovered = time.monotonic()
            for n in range(CUTS):
                # Load flows, then the broker goes away at a random moment.
                wait_until(lambda r=recovered: written_since(load, r), RECOVERY_S, "load flows")
                time.sleep(rnd.uniform(*UP_TIME))
                controlled_broker.cut()
                began = time.monotonic()
                # Commands fail fast: a 503 comes back for a command sent after the cut.
                wait_until(lambda b=began: refused_since(load, b), FAIL_FAST_S * 2, "a 503")
                # Queries answer from the local cache meanwhile.
                assert httpx.get(f"{server.url}/health", timeout=FAIL_FAST_S).status_code == 200
                time.sleep(rnd.uniform(*OUTAGE_TIME))
                ended = time.monotonic()
                controlled_broker.restore()
                # The engine recovers by itself: a command sent now is recorded.
                recovered = wait_until(
                    lambda e=ended: written_since(load, e), RECOVERY_S, f"recovery {n + 1}"
                )
                faults.append(Fault(began, ended, recovered))
            time.sleep(rnd.uniform(*UP_TIME))
        finally:
            load.finish(CLIENT_TIMEOUT_S + 10)

        # Check every command was answered, fast, and none was recorded while the
        # broker was away (a 2xx then can only be a replay of an earlier commit).
        check_answers(load, cut_off_allowed=False)
        for a, t in load.tries():
            for f in faults:
                if f.began <= t.sent_at and t.sent_at + t.seconds <= f.ended:
                    assert t.status is None or t.status >= 300 or t.replayed, (a.path, t)
        assert len(load.acknowledged) >= 20 * CUTS, load.summary()

        assert server.starts == 1, "the server was restarted"
        report = check_the_log(server, load, seeded, tansu=True)
        recoveries = [round(f.recovered - f.ended, 1) for f in faults]
        print(f"\n{CUTS} outages, recovered after {recoveries} s; {report}")
    finally:
        server.stop()

    # The views, caught up, equal a rebuild from the topic.
    compare_with_a_rebuild(server.data_dir, env=env, ignore=CACHE_FILES)


def test_sigkill_under_load_on_kafka_keeps_every_acknowledged_command_once(
    kafka_bootstrap: str, kafka_is_tansu: bool, tmp_path: Path
) -> None:
    topic = f"ticketing.crash.{uuid.uuid4().hex[:10]}"
    # A short lease: the restarted server takes over from its dead self quickly.
    env = kafka_env(kafka_bootstrap, topic, tmp_path / "keys.sqlite", 2_000)
    server = Server(tmp_path / "data", env=env).start(timeout=60)
    faults: list[Fault] = []
    try:
        people = seed(server)
        seeded = server.events()[-1]["position"]
        load = Load(
            server, people, SEED + 1, WORKERS, client_timeout=CLIENT_TIMEOUT_S, retrying=RETRYING
        ).start()
        rnd = random.Random(SEED + 1)
        try:
            recovered = time.monotonic()
            for n in range(KILLS):
                wait_until(lambda r=recovered: written_since(load, r), RECOVERY_S, "load flows")
                time.sleep(rnd.uniform(*UP_TIME))
                began = time.monotonic()
                server.kill()
                if n % 2:
                    # Restart with a fresh cache: rebuilt from the topic.
                    for pattern in CACHE_FILES:
                        for path in server.data_dir.glob(pattern):
                            path.unlink()
                server.start(timeout=60)
                ended = time.monotonic()
                recovered = wait_until(
                    lambda e=ended: written_since(load, e), RECOVERY_S, f"recovery {n + 1}"
                )
                faults.append(Fault(began, ended, recovered))
            time.sleep(rnd.uniform(*UP_TIME))
        finally:
            load.finish(CLIENT_TIMEOUT_S + 10)

        assert server.starts == KILLS + 1
        check_answers(load, cut_off_allowed=True)
        assert len(load.acknowledged) >= 20 * KILLS, load.summary()
        report = check_the_log(server, load, seeded, tansu=kafka_is_tansu)
        recoveries = [round(f.recovered - f.ended, 1) for f in faults]
        print(f"\n{KILLS} kills, writing again {recoveries} s after the restart; {report}")
    finally:
        server.stop()

    compare_with_a_rebuild(server.data_dir, env=env, ignore=CACHE_FILES)
