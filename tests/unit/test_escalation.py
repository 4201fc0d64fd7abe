"""The Escalation decider: raising with valid targets, then every transition."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid5

import pytest
from givens import given, like

from engine.domain import escalation as esc
from engine.domain.base import (
    CommandMeta,
    DomainEvent,
    InvalidTransitionError,
    RuleViolationError,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TICKET = UUID("00000000-0000-4000-8000-000000000001")
ESCALATION = UUID("00000000-0000-4000-8000-0000000000e1")
NS = UUID("00000000-0000-4000-8000-0000000000aa")

Decide = Callable[[Sequence[DomainEvent]], list[DomainEvent]]


def meta(minutes: int) -> CommandMeta:
    return CommandMeta(
        actor="agent:lee",
        occurred_at=T0 + timedelta(minutes=minutes),
        correlation_id=uuid5(NS, str(minutes)),
    )


def fold(history: Sequence[DomainEvent]) -> esc.Escalation:
    state: esc.Escalation | None = None
    for event in history:
        state = esc.evolve(state, event)
    assert state is not None
    return state


def raised(
    kind: esc.EscalationKind = "functional",
    target_type: esc.TargetType = "vendor",
    target: str = "Acme VPN",
) -> Decide:
    return lambda h: esc.raise_escalation(
        meta(len(h)),
        ESCALATION,
        TICKET,
        kind,
        target_type,
        target,
        "tunnel keeps dropping",
        2,
        "manual",
    )


# --- raising --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "target_type"),
    [
        ("functional", "queue"),
        ("functional", "department"),
        ("functional", "vendor"),
        ("hierarchical", "manager"),
    ],
)
def test_an_escalation_is_raised_open(
    kind: esc.EscalationKind, target_type: esc.TargetType
) -> None:
    events = (
        given()
        .when(raised(kind, target_type))
        .then(
            like(
                esc.EscalationRaised,
                originator_id=ESCALATION,
                originator_version=1,
                ticket_id=TICKET,
                kind=kind,
                target_type=target_type,
                target="Acme VPN",
                reason="tunnel keeps dropping",
                level=2,
                trigger="manual",
            )
        )
    )
    e = fold(events)
    assert (e.status, e.level, e.vendor_reference, e.outcome) == (
        esc.EscalationStatus.OPEN,
        2,
        None,
        None,
    )


@pytest.mark.parametrize("target_type", ["queue", "department", "vendor"])
def test_a_hierarchical_escalation_targets_a_manager_only(target_type: esc.TargetType) -> None:
    given().when(raised("hierarchical", target_type)).then_raises(
        RuleViolationError, match="hierarchical escalation targets a manager"
    )


def test_a_functional_escalation_does_not_target_a_manager() -> None:
    given().when(raised("functional", "manager")).then_raises(
        RuleViolationError, match="functional"
    )


# --- every transition in every status -------------------------------------------------------

ACTIONS: dict[
    str, tuple[Callable[[esc.Escalation, CommandMeta], list[DomainEvent]], type[DomainEvent]]
] = {
    "acknowledge": (lambda e, m: esc.acknowledge(e, m, "on it"), esc.EscalationAcknowledged),
    "vendor-reference": (
        lambda e, m: esc.record_vendor_reference(e, m, "Acme VPN", "CASE-123"),
        esc.VendorReferenceRecorded,
    ),
    "resolve": (lambda e, m: esc.resolve(e, m, "firmware patched"), esc.EscalationResolved),
    "withdraw": (lambda e, m: esc.withdraw(e, m, "not needed"), esc.EscalationWithdrawn),
}
LEADS_TO = {
    "acknowledge": esc.EscalationStatus.ACKNOWLEDGED,
    "resolve": esc.EscalationStatus.RESOLVED,
    "withdraw": esc.EscalationStatus.WITHDRAWN,
}


def history_in(status: esc.EscalationStatus) -> list[DomainEvent]:
    history = raised()([])
    steps = {
        esc.EscalationStatus.OPEN: [],
        esc.EscalationStatus.ACKNOWLEDGED: ["acknowledge"],
        esc.EscalationStatus.RESOLVED: ["acknowledge", "resolve"],
        esc.EscalationStatus.WITHDRAWN: ["withdraw"],
    }[status]
    for action in steps:
        history += ACTIONS[action][0](fold(history), meta(len(history)))
    assert fold(history).status == status
    return history


def on(action: str) -> Decide:
    return lambda h: ACTIONS[action][0](fold(h), meta(len(h)))


def test_the_table_covers_every_status_and_action() -> None:
    assert set(esc.ALLOWED) == set(esc.EscalationStatus)
    assert set().union(*esc.ALLOWED.values()) == set(ACTIONS)
    assert (
        esc.ALLOWED[esc.EscalationStatus.RESOLVED]
        == esc.ALLOWED[esc.EscalationStatus.WITHDRAWN]
        == frozenset()
    )


CASES = [(s, a) for s in esc.EscalationStatus for a in sorted(ACTIONS)]


@pytest.mark.parametrize(("status", "action"), [c for c in CASES if c[1] in esc.ALLOWED[c[0]]])
def test_an_allowed_transition_records_its_event(status: esc.EscalationStatus, action: str) -> None:
    history = history_in(status)
    events = (
        given(history)
        .when(on(action))
        .then(
            like(
                ACTIONS[action][1],
                originator_id=ESCALATION,
                originator_version=len(history) + 1,
                ticket_id=TICKET,
            )
        )
    )
    assert fold(history + events).status == LEADS_TO.get(action, status)


@pytest.mark.parametrize(("status", "action"), [c for c in CASES if c[1] not in esc.ALLOWED[c[0]]])
def test_a_refused_transition_names_the_status_and_what_is_allowed(
    status: esc.EscalationStatus, action: str
) -> None:
    error = given(history_in(status)).when(on(action)).then_raises(InvalidTransitionError)
    assert (error.aggregate, error.state, error.action) == ("escalation", status.value, action)
    assert error.allowed == sorted(esc.ALLOWED[status])


def test_the_outcome_is_recorded() -> None:
    assert fold(history_in(esc.EscalationStatus.RESOLVED)).outcome == "firmware patched"
    assert fold(history_in(esc.EscalationStatus.WITHDRAWN)).outcome == "not needed"


# --- vendor references ---------------------------------------------------------------


def test_a_vendor_reference_is_kept() -> None:
    history = history_in(esc.EscalationStatus.ACKNOWLEDGED)
    history += on("vendor-reference")(history)
    e = fold(history)
    assert (e.vendor_reference, e.status) == ("CASE-123", esc.EscalationStatus.ACKNOWLEDGED)


@pytest.mark.parametrize(
    ("kind", "target_type"),
    [("functional", "queue"), ("functional", "department"), ("hierarchical", "manager")],
)
def test_a_vendor_reference_only_for_a_vendor_target(
    kind: esc.EscalationKind, target_type: esc.TargetType
) -> None:
    history = raised(kind, target_type)([])
    given(history).when(on("vendor-reference")).then_raises(
        RuleViolationError, match=f"targets a {target_type}, not a vendor"
    )
