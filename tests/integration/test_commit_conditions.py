"""If-Match holds at commit, not only when the command decides (issue #13 item 5), on
every store: a conditional command commits only if every stream its ETag covers (a
ticket's ETag covers the Ticket and its Assignment) is still at the matched version when
it commits; and every command answers the ETag and versions after itself."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from engine.app.desk import Desk
from engine.app.errors import ConflictError, PreconditionFailedError
from engine.app.results import ticket_etag
from engine.app.runner import Idempotency
from engine.domain import assignment as asg
from engine.domain.base import RuleViolationError
from engine.domain.commands.tickets import (
    Accept,
    Assign,
    Comment,
    Pend,
    Reopen,
    Resolve,
    Resume,
    Start,
    Triage,
)
from engine.domain.priority import Level, Priority
from tests.support.kafka_broker import recorder_env
from tests.unit.givens import DeskWorld, desk_world


@pytest.fixture(params=["popo", "sqlite", pytest.param("kafka", marks=pytest.mark.kafka)])
def w(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DeskWorld]:
    env: dict[str, str] = {"PERSISTENCE_MODULE": "engine.stores.popo"}
    if request.param == "sqlite":
        env = {"PERSISTENCE_MODULE": "engine.stores.sqlite", "SQLITE_DBNAME": str(tmp_path / "e")}
    elif request.param == "kafka":
        env = recorder_env(request.getfixturevalue("kafka_bootstrap"), tmp_path)
    world = desk_world(env)
    yield world
    world.app.close()


def etag_of(w: DeskWorld, ticket_id: UUID) -> str:
    return w.desk.queries.ticket(w.admin, ticket_id).etag


def between_decide_and_commit(
    monkeypatch: pytest.MonkeyPatch, w: DeskWorld, change: Callable[[], object]
) -> None:
    """The next command's append runs ``change`` (another desk's command) first: after
    the command loaded, checked If-Match and decided, before it commits."""
    original = w.app.save

    def save(*events: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(w.app, "save", original)
        change()
        return original(*events, **kwargs)

    monkeypatch.setattr(w.app, "save", save)


def test_a_triage_fails_if_the_assignment_moves_before_it_commits(
    w: DeskWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = w.open()
    etag, version = etag_of(w, t), w.app.aggregates.ticket(t).version
    # Triage writes only the Ticket; its If-Match also names the Assignment's version.
    rival = Desk(w.app, w.clock)
    between_decide_and_commit(
        monkeypatch, w, lambda: rival.send(w.lead, Assign(ticket_id=t, agent_id=w.ann.agent_id))
    )
    with pytest.raises(PreconditionFailedError, match="does not match"):
        w.desk.send(
            w.lead, Triage(ticket_id=t, impact=Level.HIGH, urgency=Level.HIGH), if_match=etag
        )
    # Only the rival's assignment was recorded.
    ticket = w.app.aggregates.ticket(t)
    assert (ticket.version, ticket.priority) == (version, Priority.P3)
    assert w.app.aggregates.assignment(t).agent_id == w.ann.agent_id


def test_an_accept_fails_if_the_ticket_moves_before_it_commits(
    w: DeskWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = w.open()
    w.desk.send(w.lead, Assign(ticket_id=t, agent_id=w.ann.agent_id))
    etag, assignment = etag_of(w, t), w.app.aggregates.assignment(t)
    # Accept writes only the Assignment; its If-Match also names the Ticket's version.
    rival = Desk(w.app, w.clock)
    between_decide_and_commit(
        monkeypatch, w, lambda: rival.send(w.rita, Comment(ticket_id=t, body="any news?"))
    )
    with pytest.raises(PreconditionFailedError):
        w.desk.send(w.ann, Accept(ticket_id=t), if_match=etag)
    after = w.app.aggregates.assignment(t)
    assert (after.version, after.accepted) == (assignment.version, False)


def test_a_conditional_command_commits_when_nothing_it_covers_moved(
    w: DeskWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    t, other = w.open(), w.open(w.sam)
    etag = etag_of(w, t)
    # A change to another ticket between decide and commit does not touch this ETag.
    rival = Desk(w.app, w.clock)
    between_decide_and_commit(
        monkeypatch, w, lambda: rival.send(w.sam, Comment(ticket_id=other, body="hello"))
    )
    result = w.desk.send(
        w.lead, Triage(ticket_id=t, impact=Level.HIGH, urgency=Level.HIGH), if_match=etag
    )
    assert result.etag == etag_of(w, t) != etag


def test_every_ticket_command_answers_the_etag_and_version_after_itself(w: DeskWorld) -> None:
    t = w.open()
    steps: list[tuple[Any, Any]] = [
        (w.lead, Triage(ticket_id=t, impact=Level.HIGH, urgency=Level.LOW)),
        (w.lead, Assign(ticket_id=t, agent_id=w.ann.agent_id)),
        (w.lead, Assign(ticket_id=t, agent_id=w.bo.agent_id, reason="Ann is out")),  # reassign
        (w.bo, Accept(ticket_id=t)),
        (w.lead, Assign(ticket_id=t, agent_id=w.ann.agent_id, reason="Bo is out")),
        (w.ann, Start(ticket_id=t)),
        (w.ann, Pend(ticket_id=t, reason="waiting for logs", waiting_on="customer")),
        (w.rita, Comment(ticket_id=t, body="logs attached")),
        (w.ann, Resume(ticket_id=t)),
        (w.ann, Resolve(ticket_id=t, resolution_code="fixed", note="token reset")),
        (w.rita, Reopen(ticket_id=t, reason="back again")),
    ]
    for principal, command in steps:
        result = w.desk.send(principal, command)
        shown = w.desk.queries.ticket(w.admin, t)
        name = type(command).__name__
        assert (result.etag, result.version) == (shown.etag, shown.version), name
        assert shown.etag == ticket_etag(shown.version, shown.assignment_version), name
        assert result.position == w.head(), name


def test_concurrent_conditional_commands_never_commit_on_a_moved_etag(w: DeskWorld) -> None:
    """Comments under If-Match race with assignments that move the Assignment; from the
    log afterwards, every conditional comment was recorded where both streams were still
    at the versions its If-Match named."""
    t = w.open()
    agents = [w.ann.agent_id, w.bo.agent_id]
    matched: dict[int, str] = {}  # position of a recorded comment -> the ETag it matched
    stop = threading.Event()

    failures: list[BaseException] = []

    def comment() -> None:
        desk = Desk(w.app, w.clock)
        try:
            # Until 10 are recorded (most lose to a reassignment), at most 400 tries.
            for n in range(400):
                etag = etag_of(w, t)
                try:
                    r = desk.send(w.lead, Comment(ticket_id=t, body=f"n{n}"), if_match=etag)
                except (PreconditionFailedError, ConflictError):
                    continue
                matched[r.position] = etag
                if len(matched) == 10:
                    break
        except BaseException as e:
            failures.append(e)
        finally:
            stop.set()

    def reassign() -> None:
        desk = Desk(w.app, w.clock)
        n = 0
        try:
            while not stop.is_set() and n < 300:  # bounded: each one grows the stream
                n += 1
                agent = agents[n % 2]
                try:
                    desk.send(w.lead, Assign(ticket_id=t, agent_id=agent, reason=f"turn {n}"))
                except (ConflictError, RuleViolationError):
                    pass
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=comment), threading.Thread(target=reassign)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures == []
    assert matched, "no conditional comment was recorded"

    # Replay the log: each stream's version just before each recorded comment.
    versions = {t: 0, asg.assignment_id(t): 0}
    seen: dict[int, str] = {}
    for n in w.app.recorder.select_notifications(1, 100_000):
        oid = UUID(str(n.originator_id))
        if n.id in matched:
            seen[n.id] = ticket_etag(versions[t], versions[asg.assignment_id(t)])
        if oid in versions:
            versions[oid] = n.originator_version
    assert seen == matched


def test_a_duplicate_key_whose_first_try_commits_while_it_loads_is_a_replay(
    w: DeskWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(#15 item 13) The second try found no record for its key, then the first try
    committed before the second loaded the ticket: the second decides on a ticket
    already assigned (a refusal), yet must answer the first result as a replay."""
    t = w.open()
    key = Idempotency("assign-once", "POST", f"/tickets/{t}/assign", b'{"agent_id": "ann"}')
    command = Assign(ticket_id=t, agent_id=w.ann.agent_id)
    handler = w.desk.runner.handlers[Assign]
    first: list[Any] = []

    def load(repo: Any, c: Any) -> Any:
        w.desk.runner.handlers[Assign] = handler
        first.append(Desk(w.app, w.clock).send(w.lead, command, idem=key))
        return handler.load(repo, c)

    w.desk.runner.handlers[Assign] = dataclasses.replace(handler, load=load)
    again = w.desk.send(w.lead, command, idem=key)
    assert again == first[0].model_copy(update={"replayed": True})
