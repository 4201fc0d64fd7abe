"""The directory's rows (queues, agents, API keys) and erasure of a data subject."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from engine.app.application import TicketingApp
from engine.app.handlers.tickets import last_version
from engine.app.repository import Repository
from engine.app.results import stream_etag
from engine.app.runner import Handler, Outcome
from engine.domain import directory as dirs
from engine.domain import privacy
from engine.domain.base import DomainEvent, NotFoundError
from engine.domain.commands import directory as cmd
from engine.domain.commands.base import Command
from engine.domain.commands.directory import Found, hash_key


def stream_answer(
    aggregate_of: Callable[[Any], UUID],
    status_code: int = 200,
    extra: Callable[[Any], dict[str, Any]] | None = None,
) -> Callable[[Any, Any, list[DomainEvent]], Outcome]:
    """The answer of a command on one stream: its id and its version after the command."""

    def answer(c: Any, s: Any, events: list[DomainEvent]) -> Outcome:
        aggregate_id = aggregate_of(c)
        version = last_version(events, aggregate_id, 0)
        return Outcome(
            aggregate_id=aggregate_id,
            version=version,
            etag=stream_etag(version),
            status_code=status_code,
            extra=extra(c) if extra is not None else {},
        )

    return answer


def _existing_queues(repo: Repository, names: list[str] | None) -> None:
    for name in names or []:
        repo.queue(name)


def load_new_agent(repo: Repository, c: cmd.RegisterAgent) -> None:
    _existing_queues(repo, c.queues)


def load_agent(repo: Repository, c: cmd.UpdateAgent) -> Found[dirs.Agent]:
    agent = repo.agent(c.agent_id)
    _existing_queues(repo, c.queues)
    return Found(agent)


def load_subject(repo: Repository, c: cmd.EraseSubject) -> Found[privacy.DataSubject]:
    subject = repo.subject(c.subject_id)
    keys = repo.app.keys
    if not subject.erased and keys.key_for(c.subject_id) is None:
        # No personal data of theirs was ever sealed: erasing would only block the id.
        raise NotFoundError(
            f"data subject {c.subject_id!r} not found: no personal data of theirs is recorded"
        )
    if subject.erased:
        # Finish an erasure whose key destruction was interrupted (the command is then
        # refused: the erasure is recorded already).
        repo.app.keys.destroy(c.subject_id)
    return Found(subject)


def destroy_key(app: TicketingApp, c: cmd.EraseSubject) -> None:
    """Once the erasure is recorded, the subject's key goes: their personal data in every
    event, view, export and on the Kafka topic becomes unreadable."""
    app.keys.destroy(c.subject_id)
    # Remembered states hold no personal data (see Repository.current); dropping them
    # anyway keeps that true should a remembered form ever change.
    app.streams.forget_states()


def _key_issued(principal_id: Callable[[Any], str]) -> Callable[[Any], dict[str, Any]]:
    def extra(c: Any) -> dict[str, Any]:
        return {
            "api_key": c.api_key,
            "principal_id": principal_id(c),
            "credential_id": str(_credential_id(c)),
        }

    return extra


def _credential_id(c: Any) -> UUID:
    return dirs.credential_id(hash_key(c.api_key))


def _nothing(repo: Repository, c: Any) -> None:
    return None


HANDLERS: dict[type[Command], Handler[Any, Any]] = {
    cmd.CreateQueue: Handler(
        "manage_directory",
        lambda repo, c: Found(repo.find_queue(c.name)),
        cmd.create_queue,
        stream_answer(lambda c: dirs.queue_id(c.name), 201, lambda c: {"name": c.name}),
    ),
    cmd.RegisterAgent: Handler(
        "manage_directory",
        load_new_agent,
        cmd.register_agent,
        stream_answer(
            lambda c: c.agent_id, 201, _key_issued(lambda c: dirs.agent_principal(c.agent_id))
        ),
    ),
    cmd.UpdateAgent: Handler(
        "manage_directory", load_agent, cmd.update_agent, stream_answer(lambda c: c.agent_id)
    ),
    cmd.IssueApiKey: Handler(
        "manage_directory",
        _nothing,
        cmd.issue_api_key,
        stream_answer(_credential_id, 201, _key_issued(lambda c: c.principal)),
    ),
    cmd.RevokeApiKey: Handler(
        "manage_directory",
        lambda repo, c: Found(repo.credential_by_id(c.credential_id)),
        cmd.revoke_api_key,
        stream_answer(lambda c: c.credential_id),
    ),
    cmd.BootstrapAdmin: Handler(
        None,
        _nothing,
        cmd.bootstrap_admin,
        stream_answer(lambda c: dirs.BOOTSTRAP_ID, 201),
    ),
    cmd.EraseSubject: Handler(
        "manage_directory",
        load_subject,
        cmd.erase_subject,
        stream_answer(
            lambda c: privacy.subject_aggregate_id(c.subject_id),
            extra=lambda c: {"subject_id": c.subject_id},
        ),
        after=destroy_key,
    ),
}
