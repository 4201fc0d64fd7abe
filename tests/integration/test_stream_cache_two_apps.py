"""The application remembers folded states and chain heads (engine.app.streams): two
runtimes on one SQLite file must still decide on the current state, chain to the
current head, and have a stale version refused by the store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError

from engine.app.permissions import Principal
from engine.bootstrap import Runtime, build_runtime
from engine.domain import ticket as tk
from engine.domain.base import CommandMeta, EventFactory, InvalidTransitionError
from engine.domain.commands.directory import EraseSubject
from engine.domain.commands.tickets import Cancel, Comment, OpenTicket
from engine.settings import Settings

KEY = "stream-cache-admin-key-0123456789"
ALICE = "0a0a0a0a-0000-4000-8000-0000000a11ce"  # the requester, by principal id


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Runtime, Runtime]]:
    settings = Settings(data_dir=tmp_path, bootstrap_admin_key=KEY)
    a = build_runtime(settings, start_views=False)
    b = build_runtime(settings, start_views=False)
    yield a, b
    a.close()
    b.close()


def admin(runtime: Runtime) -> Principal:
    principal = runtime.principal_for(KEY)
    assert principal is not None
    return principal


def open_ticket(runtime: Runtime) -> UUID:
    cmd = OpenTicket(
        title="VPN drops",
        description="every five minutes",
        requester_id=ALICE,
        requester_name="Alice",
        requester_email="alice@example.com",
        channel="email",
        category="network",
        impact="medium",
        urgency="high",
    )
    return runtime.desk.send(admin(runtime), cmd).aggregate_id


PERSONAL = {"title", "description", "requester_name", "requester_email", "csat_comment"}


def _decided(ticket: tk.Ticket) -> dict[str, object]:
    """What a decision may read of a ticket: all but its personal data."""
    return ticket.model_dump(exclude=PERSONAL)


def comment(runtime: Runtime, ticket_id: UUID, body: str) -> int:
    return runtime.desk.send(admin(runtime), Comment(ticket_id=ticket_id, body=body)).version


def test_a_command_decides_on_what_another_process_recorded(pair: tuple[Runtime, Runtime]) -> None:
    a, b = pair
    ticket_id = open_ticket(a)
    # A remembers the ticket at version 3.
    assert comment(a, ticket_id, "first") == 3
    assert a.app.streams.state(ticket_id, tk.KIND) is not None
    # B records two more events that A has not seen.
    assert comment(b, ticket_id, "second") == 4
    assert comment(b, ticket_id, "third") == 5
    # A's next command goes on from B's version instead of conflicting on its own.
    assert comment(a, ticket_id, "fourth") == 6
    # Its decision state equals a fold of the whole stream (but for personal data, which
    # is never remembered).
    assert _decided(a.app.aggregates.ticket(ticket_id, deciding=True)) == _decided(
        a.app.aggregates.ticket(ticket_id)
    )
    assert a.app.aggregates.ticket(ticket_id).comment_count == 4
    # The hash chain links A's event to B's, not to A's remembered head.
    report = a.desk.queries.verify_ticket(admin(a), ticket_id)
    assert report["ok"] is True, report


def test_a_refusal_follows_the_current_state_not_the_remembered_one(
    pair: tuple[Runtime, Runtime],
) -> None:
    a, b = pair
    ticket_id = open_ticket(a)
    comment(a, ticket_id, "remembered while new")
    b.desk.send(admin(b), Cancel(ticket_id=ticket_id, reason="duplicate"))
    # A remembers a new ticket, but the ticket is cancelled now: a comment is refused.
    with pytest.raises(InvalidTransitionError):
        comment(a, ticket_id, "too late")


def test_the_store_still_refuses_a_stale_version(pair: tuple[Runtime, Runtime]) -> None:
    a, b = pair
    ticket_id = open_ticket(a)
    comment(a, ticket_id, "A remembers version 3 and its head")
    stale = a.app.aggregates.ticket(ticket_id, deciding=True)
    comment(b, ticket_id, "B takes version 4")
    # An event decided on the remembered version 3 (so at version 4) is refused.
    meta = CommandMeta(
        actor="admin", occurred_at=stale.updated_at, correlation_id=uuid4(), causation_id=None
    )
    event = EventFactory(meta).make(
        tk.TicketCommented,
        ticket_id,
        stale.version + 1,
        comment_id=uuid4(),
        body="stale",
        visibility="public",
        author_role="admin",
    )
    with pytest.raises(IntegrityError):
        a.app.save(event)
    assert [e.originator_version for e in a.app.aggregates.events(ticket_id)] == [1, 2, 3, 4]


def test_an_erasure_drops_remembered_ticket_states(pair: tuple[Runtime, Runtime]) -> None:
    a, _ = pair
    ticket_id = open_ticket(a)
    comment(a, ticket_id, "remembered")
    assert a.app.streams.state(ticket_id, tk.KIND) is not None
    a.desk.send(admin(a), EraseSubject(subject_id=ALICE, legal_basis="GDPR art. 17"))
    assert a.app.streams.state(ticket_id, tk.KIND) is None
    assert a.app.aggregates.ticket(ticket_id).title == "[erased]"


def test_an_append_chains_to_the_stored_head_not_an_older_remembered_one(
    pair: tuple[Runtime, Runtime],
) -> None:
    a, b = pair
    ticket_id = open_ticket(a)
    comment(a, ticket_id, "A remembers the head at version 3")
    comment(b, ticket_id, "B takes version 4")
    current = b.app.aggregates.ticket(ticket_id)
    # A appends version 5 without reading the stream first: it must chain to B's event.
    meta = CommandMeta(
        actor="admin", occurred_at=current.updated_at, correlation_id=uuid4(), causation_id=None
    )
    event = EventFactory(meta).make(
        tk.TicketCommented,
        ticket_id,
        current.version + 1,
        comment_id=uuid4(),
        body="after B",
        visibility="public",
        author_role="admin",
    )
    a.app.save(event)
    report = a.desk.queries.verify_ticket(admin(a), ticket_id)
    assert report["ok"] is True, report


def test_remembered_ticket_states_hold_no_personal_data(pair: tuple[Runtime, Runtime]) -> None:
    # An erasure in another process cannot reach this one's memory: nothing personal is
    # remembered in the first place, while decisions still see the current ticket.
    a, _ = pair
    ticket_id = open_ticket(a)
    comment(a, ticket_id, "remembered")
    remembered = a.app.streams.state(ticket_id, tk.KIND)
    assert remembered is not None
    _, state = remembered
    assert (state.title, state.description) == ("", "")
    assert (state.requester_name, state.requester_email, state.csat_comment) == (None, None, None)
    assert a.app.aggregates.ticket(ticket_id).title == "VPN drops"  # what is shown is read whole
    assert comment(a, ticket_id, "decided on the remembered state") == 4
