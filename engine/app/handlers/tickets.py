"""The ticket commands' rows: what each loads, decides (engine.domain.commands.tickets),
who may send it, and what it answers."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from uuid import UUID

from engine.app import permissions as perm
from engine.app.repository import Repository
from engine.app.results import ticket_etag
from engine.app.runner import Handler, Outcome
from engine.domain import escalation as esc
from engine.domain.base import DomainEvent
from engine.domain.commands import tickets as cmd
from engine.domain.commands.base import Command, TicketCommand

C = TypeVar("C", bound=TicketCommand)


def last_version(events: list[DomainEvent], aggregate_id: UUID, default: int) -> int:
    """The stream's version after ``events`` (``default`` if they leave it alone)."""
    versions = [e.originator_version for e in events if e.originator_id == aggregate_id]
    return max(versions, default=default)


def load_ticket(
    *,
    agents: bool = False,
    escalations: bool = False,
    other: Callable[[Any], UUID] | None = None,
    queues: Callable[[Any], Iterable[str | None]] | None = None,
    directory: bool = False,
) -> Callable[[Repository, TicketCommand], cmd.TicketState]:
    """A loader of the ticket and its assignment, with the agents whose load may change
    (the assignee, and the agent the command names), the open escalations, another
    ticket, the queues the command names (each must exist), or the directory (for a
    permission that reads the sender's record), as the command needs."""

    def load(repo: Repository, c: TicketCommand) -> cmd.TicketState:
        t = repo.ticket(c.ticket_id, deciding=True)
        a = repo.assignment(c.ticket_id)
        for name in queues(c) if queues is not None else ():
            if name is not None:
                repo.queue(name)
        involved = {a.agent_id, getattr(c, "agent_id", None)} if agents else set()
        return cmd.TicketState(
            ticket=t,
            assignment=a,
            rules=repo.app.rules,
            agents={i: repo.agent(i) for i in involved if i is not None},
            escalations=(
                {i: repo.escalation(i) for i, _ in t.open_escalations} if escalations else {}
            ),
            other=repo.ticket(other(c), deciding=True) if other is not None else None,
            find_agent=repo.agent if directory else None,
        )

    return load


def ticket_answer(c: TicketCommand, s: cmd.TicketState, events: list[DomainEvent]) -> Outcome:
    tv = last_version(events, s.ticket.id, s.ticket.version)
    av = last_version(events, s.assignment.id, s.assignment.version)
    return Outcome(aggregate_id=s.ticket.id, version=tv, etag=ticket_etag(tv, av))


def opened(c: cmd.OpenTicket, s: cmd.DeskRules, events: list[DomainEvent]) -> Outcome:
    av = 1 if c.queue is not None else 0
    return Outcome(aggregate_id=c.ticket_id, version=2, etag=ticket_etag(2, av), status_code=201)


def raised(c: cmd.Escalate, s: cmd.TicketState, events: list[DomainEvent]) -> Outcome:
    level = next(e.level for e in events if isinstance(e, esc.EscalationRaised))
    return Outcome(
        aggregate_id=c.escalation_id,
        version=1,
        etag='"1"',
        status_code=201,
        extra={"ticket_id": str(s.ticket.id), "level": level},
    )


def load_rules(repo: Repository, c: cmd.OpenTicket) -> cmd.DeskRules:
    if c.queue is not None:
        repo.queue(c.queue)
    return repo.app.rules


def _etag(s: cmd.TicketState) -> str:
    return ticket_etag(s.ticket.version, s.assignment.version)


def _covers(s: cmd.TicketState) -> dict[UUID, int]:
    """The streams the ticket's ETag names, at the versions it names."""
    return {s.ticket.id: s.ticket.version, s.assignment.id: s.assignment.version}


def on_ticket(
    action: str,
    decide: Callable[[C, cmd.TicketState, Any], list[DomainEvent]],
    load: Callable[[Repository, TicketCommand], cmd.TicketState] | None = None,
    **options: Any,
) -> Handler[C, cmd.TicketState]:
    """The usual row of a ticket command: owners only, If-Match on the ticket's ETag."""
    options.setdefault("permit", perm.ticket_owner(action))
    return Handler(
        action=action,
        load=load or _plain,
        decide=decide,
        answer=options.pop("answer", ticket_answer),
        etag=_etag,
        covers=_covers,
        resource="ticket",
        **options,
    )


_plain = load_ticket()
_assignee = load_ticket(agents=True)
_ending = load_ticket(agents=True, escalations=True)
_closing = load_ticket(escalations=True)

HANDLERS: dict[type[Command], Handler[Any, Any]] = {
    cmd.OpenTicket: Handler("open", load_rules, cmd.open_ticket, opened),
    cmd.Triage: on_ticket("triage", cmd.triage, permit=perm.may_override_priority),
    cmd.Comment: on_ticket("comment", cmd.comment, guard=perm.may_comment),
    cmd.Assign: on_ticket(
        "assign",
        cmd.assign,
        load_ticket(agents=True, queues=lambda c: [c.queue], directory=True),
        guard=perm.may_assign,
        permit=perm.may_move_ticket,
    ),
    cmd.Accept: on_ticket("accept", cmd.accept),
    cmd.Release: on_ticket("release", cmd.release, _assignee),
    cmd.Start: on_ticket("start", cmd.start),
    cmd.Pend: on_ticket("pend", cmd.pend),
    cmd.Resume: on_ticket("resume", cmd.resume),
    cmd.Resolve: on_ticket("resolve", cmd.resolve, _assignee),
    cmd.Reopen: on_ticket("reopen", cmd.reopen, _assignee),
    cmd.Close: on_ticket("close", cmd.close, _closing),
    cmd.Cancel: on_ticket("cancel", cmd.cancel, _ending),
    cmd.Link: on_ticket("link", cmd.link, load_ticket(other=lambda c: c.other_ticket_id)),
    cmd.Merge: on_ticket(
        "merge",
        cmd.merge,
        load_ticket(agents=True, escalations=True, other=lambda c: c.into_ticket_id),
    ),
    cmd.Rate: on_ticket("rate", cmd.rate),
    cmd.Escalate: on_ticket(
        "escalate",
        cmd.escalate,
        load_ticket(queues=lambda c: [c.target if c.target_type == "queue" else None]),
        answer=raised,
    ),
}
