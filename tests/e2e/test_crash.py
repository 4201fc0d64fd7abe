"""Crash safety: SIGKILL the server at random moments under concurrent load.

Several client threads send commands (open, comment, triage, assign, start), each with
a unique Idempotency-Key, while the main thread SIGKILLs the server at seeded random
moments and restarts it on the same data directory. Afterwards the log must show:

- every command that got a 2xx, exactly once, at the aggregate version it answered;
- no command that got an error recorded anything;
- no command half-recorded: each command's events (one correlation id) are all there;
- versions per aggregate contiguous from 1, positions strictly increasing;
- retrying every command that got no answer, with its Idempotency-Key, returns the
  recorded result, or records it once (or is refused, recording nothing);
- every view, caught up from where the kills left it, equals a fresh rebuild, and so
  do the views of a run without kills.

The load and the checks are shared with the Kafka crash tests (``load.py``).
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.load import (
    Load,
    by_key,
    check_acknowledged,
    check_log,
    compare_with_a_rebuild,
    retry_unanswered,
)
from tests.e2e.proc import Server, seed

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(180)]

SEED = int(os.environ.get("CRASH_SEED", "20261124"))
KILLS = int(os.environ.get("CRASH_KILLS", "12"))
WORKERS = 6
# How long the load runs between two kills (seconds, drawn uniformly).
UP_TIME = (0.4, 1.6)


@pytest.fixture(scope="module")
def crashed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Load, int]]:
    """A server that was SIGKILLed KILLS times under load, restarted after each kill."""
    server = Server(tmp_path_factory.mktemp("crash") / "data").start()
    try:
        people = seed(server)
        seeded = server.events()[-1]["position"]
        load = Load(server, people, SEED, WORKERS).start()
        rnd = random.Random(SEED)
        try:
            for _ in range(KILLS):
                time.sleep(rnd.uniform(*UP_TIME))
                server.kill()
                time.sleep(rnd.uniform(0.0, 0.2))
                server.start()
            time.sleep(rnd.uniform(*UP_TIME))
        finally:
            load.finish(30)
        yield server, load, seeded
    finally:
        server.stop()


def test_sigkill_under_load_keeps_every_acknowledged_command_once(
    crashed: tuple[Server, Load, int],
) -> None:
    server, load, seeded = crashed
    assert server.starts == KILLS + 1
    # Check the load was real: commands acknowledged, and commands cut off by kills.
    ok = [a for a in load.answered if a.status is not None and a.status < 300]
    unanswered = [a for a in load.attempts if a.status is None]
    assert len(ok) >= 10 * KILLS, f"only {len(ok)} commands acknowledged"
    assert unanswered, "no command was cut off by a kill"

    # Check the log after the last restart.
    events = server.events()
    check_log(events, seeded)
    check_acknowledged(events, load.attempts)

    # Retry every command that got no answer; the log stays whole and exactly-once.
    committed_unanswered = len(set(by_key(events)) & {a.key for a in unanswered})
    recorded = retry_unanswered(server, load.attempts)
    events = server.events()
    check_log(events, seeded)
    check_acknowledged(events, load.attempts)
    records = by_key(events)
    assert all(len(r) == 1 for r in records.values())
    acknowledged = {a.key for a in load.attempts if a.status is not None and a.status < 300}
    assert set(records) == acknowledged, "a recorded command is unknown to its client"
    statuses = Counter(a.status for a in load.attempts)
    print(
        f"\n{len(load.attempts)} commands {dict(statuses)}; {len(ok)} acknowledged; "
        f"{len(unanswered)} cut off by {KILLS} kills: {committed_unanswered} had committed, "
        f"{len(recorded)} recorded on retry; {len(events)} events"
    )


def test_views_after_the_kills_equal_a_fresh_rebuild(
    crashed: tuple[Server, Load, int],
) -> None:
    server, _, _ = crashed
    server.stop()
    # The views as the kills left them, caught up by a restarted server, against a
    # rebuild.
    compare_with_a_rebuild(server.data_dir)


def test_views_without_kills_equal_a_fresh_rebuild(tmp_path: Path) -> None:
    server = Server(tmp_path / "data").start()
    try:
        load = Load(server, seed(server), SEED, WORKERS).start()
        time.sleep(8)
        load.finish(30)
    finally:
        server.stop()
    compare_with_a_rebuild(server.data_dir)
