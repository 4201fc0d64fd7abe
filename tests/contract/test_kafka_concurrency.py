"""Optimistic concurrency across processes: two engine processes, each with its own
recorder and cache, race to append the next version of the same few tickets.

Each attempt reads the ticket's current version from its own cache and appends the
next one, as a command handler does. The log must end with every ticket's versions
1..n exactly once (no duplicate, no gap), each recorded event must be the one its
winner appended, and every loser must have got the library's IntegrityError.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import InfrastructureFactory, IntegrityError
from eventsourcing.utils import Environment

from tests.contract.store_contract import commented, opened
from tests.support.kafka_broker import KafkaRecorders, recorder_env

pytestmark = pytest.mark.kafka

PROCESSES = 2
THREADS = 4
ATTEMPTS_PER_THREAD = 300  # 2 x 4 x 300 = 2,400 contended appends
TICKETS = 5


def contend(config: dict[str, Any]) -> None:
    """Child process: one recorder, ``THREADS`` racing agents, a JSON report."""
    env = recorder_env(config["bootstrap"], config["dir"], KAFKA_TOPIC=config["topic"])
    factory = InfrastructureFactory.construct(Environment(env=env))
    recorder = factory.application_recorder()
    tickets = [UUID(t) for t in config["tickets"]]
    report: dict[str, Any] = {"won": [], "lost": 0, "unavailable": [], "writer": None}
    lock = threading.Lock()
    print("ready", flush=True)
    sys.stdin.readline()  # wait for the parent's go, so both processes race
    report["writer"] = recorder.log.writer.state == "active"

    def agent(number: int) -> None:
        rng = random.Random(f"{config['name']}-{number}")
        for attempt in range(ATTEMPTS_PER_THREAD):
            ticket = rng.choice(tickets)
            version = recorder.select_events(ticket, desc=True, limit=1)[0].originator_version
            mark = f"{config['name']}/{number}/{attempt}"
            try:
                recorder.insert_events([commented(ticket, version + 1, mark)])
            except IntegrityError:
                with lock:
                    report["lost"] += 1
            except Exception as e:  # counted: the test expects none
                with lock:
                    report["unavailable"].append(f"{type(e).__name__}: {e}")
            else:
                with lock:
                    report["won"].append([str(ticket), version + 1, mark])

    threads = [threading.Thread(target=agent, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps(report), flush=True)
    factory.close()


class TestTwoProcesses(KafkaRecorders):
    def test_contended_appends_never_duplicate_nor_skip_a_version(self, tmp_path: Path) -> None:
        # Open the tickets, so that every attempt is contended from the start.
        setup = self.kafka_factory().application_recorder()
        topic = setup.log.settings.topic
        tickets = [uuid4() for _ in range(TICKETS)]
        setup.insert_events([opened(t) for t in tickets])
        self.kafka_factories.pop().close()

        children = [
            self.spawn(topic, tickets, tmp_path / f"p{n}", f"p{n}") for n in range(PROCESSES)
        ]
        try:
            for child in children:
                self.expect_line(child, "ready")
            for child in children:
                assert child.stdin is not None
                child.stdin.write("go\n")
                child.stdin.flush()
            reports = [json.loads(self.expect_line(child, "{")) for child in children]
        finally:
            for child in children:
                if child.poll() is None:
                    child.kill()
                child.wait(10)

        # Read the whole log back through a fresh recorder and cache.
        checker = self.kafka_factory(KAFKA_TOPIC=topic).application_recorder()
        won = {(t, v): mark for report in reports for t, v, mark in report["won"]}
        lost = sum(report["lost"] for report in reports)
        attempts = PROCESSES * THREADS * ATTEMPTS_PER_THREAD
        assert [r["unavailable"] for r in reports] == [[]] * PROCESSES
        assert len(won) + lost == attempts >= 2000
        assert lost > 0, "the appends were not contended"
        assert all(r["won"] for r in reports), "both processes must have won some appends"
        print({r["writer"]: (len(r["won"]), r["lost"]) for r in reports})
        # One process was the elected writer; the other forwarded its appends.
        assert sorted(r["writer"] for r in reports) == [False, True]

        recorded = 0
        for ticket in tickets:
            events = checker.select_events(ticket)
            versions = [e.originator_version for e in events]
            assert versions == list(range(1, len(versions) + 1)), "duplicate or missing version"
            for event in events[1:]:
                # The recorded event is the winner's, and the winner was told so.
                assert won[(str(ticket), event.originator_version)].encode() in event.state
            recorded += len(events) - 1
        assert recorded == len(won)
        notifications = checker.select_notifications(None, attempts + TICKETS + 1)
        assert len(notifications) == recorded + TICKETS

    def spawn(self, topic: str, tickets: list[UUID], directory: Path, name: str) -> Any:
        config = {
            "bootstrap": self.kafka_bootstrap,
            "topic": topic,
            "dir": str(directory),
            "tickets": [str(t) for t in tickets],
            "name": name,
        }
        code = f"from tests.contract.test_kafka_concurrency import contend; contend({config!r})"
        root = Path(__file__).resolve().parents[2]
        return subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(root)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def expect_line(self, child: Any, prefix: str, timeout: float = 120) -> str:
        """The child's next stdout line, which must start with ``prefix``."""
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(child.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        assert line and line[0].startswith(prefix), f"child said {line!r}, rc={child.poll()}"
        return line[0]
