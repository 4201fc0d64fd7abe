"""What every use case shares: the application, the clock, and the ticket command
skeleton (load, authorize, check If-Match, decide, commit)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from engine.app.application import (
    Idempotency,
    PreconditionFailedError,
    TicketingApp,
    etag,
    new_meta,
)
from engine.app.permissions import Principal, authorize
from engine.app.results import CommandResult
from engine.domain import assignment as asg
from engine.domain import directory as dirs
from engine.domain import ticket as tk
from engine.domain.base import (
    CommandMeta,
    DomainEvent,
    EventFactory,
)

Decision = Callable[[tk.Ticket, asg.Assignment, CommandMeta], list[DomainEvent]]


def _last_version(events: list[DomainEvent], aggregate_id: UUID, default: int) -> int:
    versions = [e.originator_version for e in events if e.originator_id == aggregate_id]
    return max(versions, default=default)


def check_if_match(if_match: str | None, current: str, resource: str) -> None:
    """Refuse a conditional command whose If-Match names none of the current ETag
    (a comma-separated list and ``*`` are honoured, as HTTP defines them)."""
    if if_match is None:
        return
    offered = {tag.strip() for tag in if_match.split(",")}
    if "*" not in offered and current not in offered:
        raise PreconditionFailedError(
            f"If-Match {if_match} does not match the {resource}'s ETag {current}"
        )


class UseCases:
    """The application and the injected clock; time never comes from the domain."""

    def __init__(self, app: TicketingApp, clock: Callable[[], datetime]) -> None:
        self.app = app
        self.clock = clock

    def _meta(self, principal: Principal) -> CommandMeta:
        return new_meta(principal, self.clock())

    def _on_ticket(
        self,
        principal: Principal,
        ticket_id: UUID,
        action: str,
        decide: Decision,
        if_match: str | None,
        idem: Idempotency | None,
    ) -> CommandResult:
        meta = self._meta(principal)

        def decision() -> tuple[list[DomainEvent], Callable[[int], CommandResult]]:
            t = self.app.ticket(ticket_id, deciding=True)
            a = self.app.assignment(ticket_id)
            authorize(principal, action, requester_id=t.requester_id, assignee=a.agent_id)
            check_if_match(if_match, etag(t.version, a.version), "ticket")
            events = decide(t, a, meta)
            tv = _last_version(events, t.id, t.version)
            av = _last_version(events, a.id, a.version)

            def result(position: int) -> CommandResult:
                return CommandResult(
                    aggregate_id=t.id, version=tv, position=position, etag=etag(tv, av)
                )

            return events, result

        return self.app.run(principal, meta, idem, decision)

    def _drop_from_agent(
        self, a: asg.Assignment, meta: CommandMeta, ticket_id: UUID, why: str
    ) -> list[DomainEvent]:
        if a.agent_id is None:
            return []
        return dirs.drop_ticket(self.app.agent(a.agent_id), EventFactory(meta), ticket_id, why)
