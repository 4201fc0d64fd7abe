"""The one command runner: every command, from the API, the CLI or the engine's own
processes, is decided and recorded here.

For a command, its handler (one row of the table in ``engine.app.handlers``) says which
streams to load, which pure decider to call, who may send it and what it answers. The
runner then: refuses a role that may never send it, answers a retried Idempotency-Key
from its first result, loads the streams (``Repository``), checks ownership and
If-Match, decides, and appends every event with the idempotency record in one atomic
append. A store conflict becomes ``ConflictError`` (nothing recorded).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable
from uuid import UUID, uuid4

from eventsourcing.persistence import IntegrityError, Recording

from engine.app.application import TicketingApp
from engine.app.errors import ConflictError, IdempotencyKeyReusedError, PreconditionFailedError
from engine.app.permissions import Principal, require_role
from engine.app.repository import Repository
from engine.app.results import CommandResult
from engine.domain.base import (
    CommandMeta,
    DomainError,
    DomainEvent,
    EventFactory,
    RuleViolationError,
)
from engine.domain.commands.base import Command
from engine.domain.idempotency import CommandProcessed, command_processed, idempotency_id

C = TypeVar("C", bound=Command)
S = TypeVar("S")

# A command that loses a race because this process's reads trailed the log decides
# again on the log as it is now, at most this many times in all, then answers 409.
MAX_ATTEMPTS = 3
CATCH_UP_TIMEOUT = 2.0  # seconds to wait for the reads to reach the log's head


@runtime_checkable
class TrailingReads(Protocol):
    """A store whose reads may trail its log (the Kafka store's cache). ``catch_up``
    waits until reads hold everything the log held when it was called, and
    ``wait_for_position`` until they hold every event up to that notification id;
    each is False if that could not be done within ``timeout`` seconds."""

    def catch_up(self, timeout: float) -> bool: ...

    def wait_for_position(self, position: int, timeout: float) -> bool: ...


@runtime_checkable
class Positions(Protocol):
    """A store that can name the notification id (position) of a stored event."""

    def position_of(self, originator_id: UUID, version: int) -> int | None: ...


class Idempotency:
    """The identity of one command as the client sent it."""

    def __init__(self, key: str, method: str, path: str, body: bytes) -> None:
        self.key, self.method, self.path = key, method, path
        self.request_hash = hashlib.sha256(
            method.encode() + b" " + path.encode() + b"\n" + body
        ).hexdigest()


@dataclass(frozen=True)
class Outcome:
    """What a command answers, but its log position (known once it is committed)."""

    aggregate_id: UUID
    version: int
    etag: str
    status_code: int = 200
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Handler(Generic[C, S]):
    """One command's row: the role-level permission, the streams it loads, the decider,
    the answer (none for the processes' commands, whose answer nobody reads); and
    optionally the checks of who may send this command before anything is
    read (``guard``) and on what was read (``permit``: ownership), the resource's ETag for
    If-Match and the streams (with their versions) it ``covers``, which a conditional
    command's append requires unchanged at commit, and what happens once it is recorded
    (``after``)."""

    action: str | None
    load: Callable[[Repository, C], S]
    decide: Callable[[C, S, CommandMeta], list[DomainEvent]]
    answer: Callable[[C, S, list[DomainEvent]], Outcome] | None = None
    guard: Callable[[Principal, C], None] | None = None
    permit: Callable[[Principal, C, S], None] | None = None
    etag: Callable[[S], str] | None = None
    covers: Callable[[S], Mapping[UUID, int]] | None = None
    resource: str = "resource"
    after: Callable[[TicketingApp, C], None] | None = None


@dataclass(frozen=True)
class Decided:
    """A command's events, decided but not yet appended, and the state it was decided on."""

    events: list[DomainEvent]
    state: Any = None


class Runner:
    """Sends commands through their handlers; ``decide`` and ``append`` are the two
    halves of ``send`` for processes that append several decisions together."""

    def __init__(
        self,
        app: TicketingApp,
        handlers: Mapping[type[Command], Handler[Any, Any]],
        clock: Callable[[], datetime],
    ) -> None:
        self.app = app
        self.repository = app.aggregates
        self.handlers = dict(handlers)
        self.clock = clock

    def register(self, command: type[C], handler: Handler[C, Any]) -> None:
        self.handlers[command] = handler

    def meta(self, principal: Principal) -> CommandMeta:
        return CommandMeta(
            actor=principal.id,
            role=principal.role.value,
            occurred_at=self.clock(),
            correlation_id=uuid4(),
        )

    def send(
        self,
        principal: Principal,
        command: Command,
        *,
        idem: Idempotency | None = None,
        if_match: str | None = None,
    ) -> CommandResult:
        """Decide and record ``command`` once, as ``principal``."""
        handler = self.handlers[type(command)]
        if handler.action is not None:
            require_role(principal, handler.action)
        if handler.guard is not None:
            handler.guard(principal, command)
        meta = self.meta(principal)
        result = self._previous_result(principal, idem) if idem is not None else None
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if result is not None:
                break
            last = attempt == MAX_ATTEMPTS
            seen = self.app.recorder.max_notification_id() or 0
            try:
                decided = self._attempt(principal, command, handler, meta, idem, if_match)
            except DomainError:
                # Refused on what this process has read: if its reads trailed the log,
                # decide again on the log as it is now (what any other server would say).
                if not last and self._catch_up(past=seen):
                    continue
                raise
            if isinstance(decided, CommandResult):
                result = decided  # the same key's first result
                break
            events, outcome, conditions = decided
            try:
                result = self._commit(principal, meta, events, outcome, idem, conditions)
            except ConflictError:
                behind = self._catch_up()
                if idem is not None:
                    # The same key's first append may be what won: answer it.
                    result = self._previous_result(principal, idem)
                    if result is not None:
                        break
                if behind and not last:
                    # Decide again on the log as it is now (the same correlation id).
                    meta = meta.model_copy(update={"occurred_at": self.clock()})
                    continue
                if conditions is not None:
                    # The conflict may be the If-Match's: then it is a failed precondition.
                    assert handler.etag is not None
                    current = handler.etag(handler.load(self.repository, command))
                    check_if_match(if_match or "", current, handler.resource)
                raise
        assert result is not None
        if handler.after is not None:
            handler.after(self.app, command)
        return result

    def _attempt(
        self,
        principal: Principal,
        command: Command,
        handler: Handler[Any, Any],
        meta: CommandMeta,
        idem: Idempotency | None,
        if_match: str | None,
    ) -> CommandResult | tuple[list[DomainEvent], Outcome, dict[UUID, int] | None]:
        """Load, check and decide once: the same key's first result if it is found, else
        the events, the answer and the append's conditions (If-Match's streams)."""
        assert handler.answer is not None, f"{type(command).__name__} has no answer"
        state = handler.load(self.repository, command)
        if idem is not None:
            # Read after the state: if the same key's first append is in what was
            # loaded, its record is found here, and this is a retry, not a new try.
            previous = self._previous_result(principal, idem)
            if previous is not None:
                return previous
        if handler.permit is not None:
            handler.permit(principal, command, state)
        conditions: dict[UUID, int] | None = None
        if if_match is not None and handler.etag is not None:
            check_if_match(if_match, handler.etag(state), handler.resource)
            if handler.covers is not None and if_match.strip() != "*":
                # The ETag's streams must still be at these versions at commit.
                conditions = dict(handler.covers(state))
        events = handler.decide(command, state, meta)
        return events, handler.answer(command, state, events), conditions

    def decide(self, command: Command, meta: CommandMeta | Callable[[Any], CommandMeta]) -> Decided:
        """Half of ``send`` for the engine's own processes (no principal, no If-Match):
        load and decide, without appending. ``meta`` may be made from the loaded state
        (a process's correlation id names what it reacted to)."""
        handler = self.handlers[type(command)]
        state = handler.load(self.repository, command)
        events = handler.decide(command, state, meta(state) if callable(meta) else meta)
        return Decided(events, state)

    def append(self, *decided: Decided) -> list[Recording[UUID]]:
        """Append the decisions' events in one atomic append; ``ConflictError`` (and
        nothing recorded) if any stream moved on since it was loaded."""
        try:
            return self.app.save(*(e for d in decided for e in d.events))
        except IntegrityError:
            raise ConflictError(
                "another change to the same ticket or agent was recorded first; reload and retry"
            ) from None

    # --- after a conflict --------------------------------------------------------------

    def _catch_up(self, past: int | None = None) -> bool:
        """Once a command was refused: bring this process's reads up to the log's head.
        True if the store's reads may trail its log (``TrailingReads``), now hold what
        it held, and (given ``past``, the position read before deciding) took in events
        after ``past``: the refusal may have come only from reading behind. A store that
        reads the log itself (SQLite) is never behind: its conflicts are races."""
        recorder = self.app.recorder
        if not (isinstance(recorder, TrailingReads) and recorder.catch_up(CATCH_UP_TIMEOUT)):
            return False
        return past is None or (recorder.max_notification_id() or 0) > past

    # --- exactly once ----------------------------------------------------------------------

    def _previous_result(self, principal: Principal, idem: Idempotency) -> CommandResult | None:
        events = self.repository.events(idempotency_id(principal.id, idem.key))
        if not events:
            return None
        record = events[0]
        assert isinstance(record, CommandProcessed)
        if record.request_hash != idem.request_hash:
            raise IdempotencyKeyReusedError(
                f"Idempotency-Key {idem.key!r} was used for a different request "
                f"({record.method} {record.path}); use a new key"
            )
        # The first answer's position is its own record's (the last of its append).
        recorder = self.app.recorder
        position = (
            recorder.position_of(record.originator_id, record.originator_version)
            if isinstance(recorder, Positions)
            else None
        )
        if position is None:  # a store that cannot say: the head is at or after it
            position = recorder.max_notification_id() or 0
        return CommandResult.model_validate(
            {**record.response, "position": position, "replayed": True}
        )

    def _commit(
        self,
        principal: Principal,
        meta: CommandMeta,
        events: Sequence[DomainEvent],
        outcome: Outcome,
        idem: Idempotency | None,
        conditions: dict[UUID, int] | None = None,
    ) -> CommandResult:
        """Append the events (and the idempotency record) in one atomic append, on
        ``conditions`` (streams it relies on and their versions); ``ConflictError`` if
        the store refuses it."""
        pending = list(events)
        if not pending:
            raise RuleViolationError("the command changes nothing")
        if idem is not None:
            # The first result, kept for retries (an API key shown once is not kept).
            stored = {
                "aggregate_id": str(outcome.aggregate_id),
                "version": outcome.version,
                "etag": outcome.etag,
                "status_code": outcome.status_code,
                "extra": {k: v for k, v in outcome.extra.items() if k != "api_key"},
            }
            pending += command_processed(
                EventFactory(meta),
                principal.id,
                idem.key,
                idem.method,
                idem.path,
                idem.request_hash,
                outcome.status_code,
                stored,
            )
        try:
            recordings = self.app.save(*pending, conditions=conditions)
        except IntegrityError:
            raise ConflictError(
                "another change to the same ticket or agent was recorded first; reload and retry"
            ) from None
        return CommandResult(
            aggregate_id=outcome.aggregate_id,
            version=outcome.version,
            position=max(r.notification.id for r in recordings) if recordings else 0,
            etag=outcome.etag,
            status_code=outcome.status_code,
            extra=outcome.extra,
        )


def check_if_match(if_match: str, current: str, resource: str) -> None:
    """Refuse a conditional command whose If-Match names none of the current ETag
    (a comma-separated list and ``*`` are honoured, as HTTP defines them)."""
    offered = {tag.strip() for tag in if_match.split(",")}
    if "*" not in offered and current not in offered:
        raise PreconditionFailedError(
            f"If-Match {if_match} does not match the {resource}'s ETag {current}"
        )
