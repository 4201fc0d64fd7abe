"""The directory deciders: queues, agents (capacity, load) and credentials."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from uuid import UUID

import pytest
from givens import given, like

from engine.domain import directory as dirs
from engine.domain.base import (
    CommandMeta,
    DomainEvent,
    EventFactory,
    NotFoundError,
    RuleViolationError,
)

META = CommandMeta(
    actor="admin:root",
    occurred_at=datetime(2026, 3, 2, 9, tzinfo=UTC),
    correlation_id=UUID("00000000-0000-4000-8000-0000000000aa"),
)
ANN = UUID("00000000-0000-4000-8000-00000000a001")
TICKETS = [UUID(f"00000000-0000-4000-8000-0000000000{n:02d}") for n in range(1, 4)]

Decide = Callable[[Sequence[DomainEvent]], list[DomainEvent]]


def fold(history: Sequence[DomainEvent]) -> dirs.Agent:
    state: dirs.Agent | None = None
    for event in history:
        state = dirs.evolve_agent(state, event)
    assert state is not None
    return state


def register(
    capacity: int = 2, role: dirs.Role = dirs.Role.AGENT, queues: Sequence[str] = ("b", "a", "b")
) -> Decide:
    return lambda h: dirs.register_agent(
        META, ANN, "Ann", "ann@example.com", role, list(queues), capacity
    )


def take(ticket: UUID) -> Decide:
    return lambda h: dirs.take_ticket(fold(h), EventFactory(META), ticket)


def drop(ticket: UUID) -> Decide:
    return lambda h: dirs.drop_ticket(fold(h), EventFactory(META), ticket, "resolved")


REGISTERED = register()([])


def test_a_queue_is_created_at_an_id_derived_from_its_name() -> None:
    (event,) = (
        given()
        .when(lambda h: dirs.create_queue(META, "network", "LAN and VPN"))
        .then(like(dirs.QueueCreated, originator_id=dirs.queue_id("network"), name="network"))
    )
    assert dirs.evolve_queue(None, event).description == "LAN and VPN"
    assert dirs.queue_id("network") != dirs.queue_id("Network")


@pytest.mark.parametrize("role", [dirs.Role.AGENT, dirs.Role.LEAD])
def test_an_agent_is_registered_with_sorted_unique_queues(role: dirs.Role) -> None:
    events = (
        given()
        .when(register(role=role))
        .then(
            like(
                dirs.AgentRegistered,
                originator_id=ANN,
                originator_version=1,
                role=role,
                queues=["a", "b"],
                capacity=2,
            )
        )
    )
    a = fold(events)
    assert (a.queues, a.capacity, a.active, a.load) == (frozenset({"a", "b"}), 2, True, 0)


def test_an_agents_capacity_is_at_least_one() -> None:
    given().when(register(capacity=1)).then(like(dirs.AgentRegistered, capacity=1))
    for capacity in (0, -1):
        given().when(register(capacity=capacity)).then_raises(
            RuleViolationError, match="at least 1"
        )


@pytest.mark.parametrize("role", [dirs.Role.REQUESTER, dirs.Role.AUDITOR, dirs.Role.ADMIN])
def test_only_agents_and_leads_are_registered_as_agents(role: dirs.Role) -> None:
    given().when(register(role=role)).then_raises(RuleViolationError, match="agent or lead")


def test_an_update_keeps_what_it_does_not_name() -> None:
    events = (
        given(REGISTERED)
        .when(lambda h: dirs.update_agent(fold(h), META, None, 5, None, "promoted"))
        .then(
            like(
                dirs.AgentUpdated, originator_version=2, queues=["a", "b"], capacity=5, active=True
            )
        )
    )
    assert fold(REGISTERED + events).capacity == 5


def test_an_update_refuses_a_capacity_below_one_and_may_deactivate() -> None:
    given(REGISTERED).when(
        lambda h: dirs.update_agent(fold(h), META, None, 0, None, None)
    ).then_raises(RuleViolationError)
    events = (
        given(REGISTERED)
        .when(lambda h: dirs.update_agent(fold(h), META, ["c"], None, False, "left"))
        .then(like(dirs.AgentUpdated, queues=["c"], capacity=2, active=False))
    )
    assert not fold(REGISTERED + events).active


def test_the_load_counts_tickets_taken_and_dropped_once_each() -> None:
    history = list(REGISTERED)
    for ticket in TICKETS[:2]:
        history += (
            given(history).when(take(ticket)).then(like(dirs.AgentTookTicket, ticket_id=ticket))
        )
    assert fold(history).load == 2

    # Taking a ticket held already, or dropping one not held, records nothing.
    given(history).when(take(TICKETS[0])).then()
    given(history).when(drop(TICKETS[2])).then()

    history += (
        given(history)
        .when(drop(TICKETS[0]))
        .then(
            like(
                dirs.AgentDroppedTicket, originator_version=4, ticket_id=TICKETS[0], why="resolved"
            )
        )
    )
    assert fold(history).tickets == frozenset({TICKETS[1]})


def test_a_credential_records_the_key_hash_never_the_key() -> None:
    (issued,) = dirs.issue_credential(
        EventFactory(META), "ab" * 32, f"agent:{ANN}", "Ann", dirs.Role.AGENT, ANN
    )
    assert issued.originator_id == dirs.credential_id("ab" * 32)
    assert "ab" * 32 not in issued.model_dump_json()
    credential = dirs.evolve_credential(None, issued)
    assert (credential.principal_id, credential.role, credential.revoked) == (
        f"agent:{ANN}",
        dirs.Role.AGENT,
        False,
    )
    revoked = EventFactory(META).make(
        dirs.CredentialRevoked, issued.originator_id, 2, reason="laptop lost"
    )
    assert dirs.evolve_credential(credential, revoked).revoked


def test_a_credential_is_revoked_once_with_its_reason() -> None:
    (issued,) = dirs.issue_credential(
        EventFactory(META), "cd" * 32, "requester:Rita", "Rita", dirs.Role.REQUESTER, None
    )
    credential = dirs.evolve_credential(None, issued)
    (revoked,) = dirs.revoke_credential(credential, EventFactory(META), "left the company")
    assert isinstance(revoked, dirs.CredentialRevoked)
    assert (revoked.originator_id, revoked.originator_version, revoked.reason) == (
        issued.originator_id,
        2,
        "left the company",
    )
    after = dirs.evolve_credential(credential, revoked)
    assert after.revoked and after.version == 2
    with pytest.raises(RuleViolationError, match="already revoked"):
        dirs.revoke_credential(after, EventFactory(META), "again")
    with pytest.raises(NotFoundError):
        dirs.revoke_credential(None, EventFactory(META), "no such key")
