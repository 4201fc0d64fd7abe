"""Reports: every metric of docs/metrics.md on a small history with pinned times."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.popo import POPOApplicationRecorder

from engine.domain.priority import Level
from engine.projections import Views
from engine.projections.reports.queries import duration_stats
from tests.support.simulation import Desk

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
H = 3600.0
D = 24 * H


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


class World:
    """Tickets A..F and E (opened 40 days before the window):

    A  opened 0h, Ann assigned 1h, started 2h, resolved 24h, rated 5 at 25h
    B  opened 3h, agent replied 4h, escalated 5h, cancelled 6h
    C  opened 24h, Bo assigned 25h, resolved 48h, reopened 49h, resolved 72h, rated 3
    D  opened 96h, stays open
    F  opened 120h in network, Bo assigned 121h, resolved 123h
    E  opened 40 days before T0, stays open
    """

    def __init__(self, tmp: Path, sla: bool = False) -> None:
        self.recorder = POPOApplicationRecorder()
        d = self.desk = Desk(self.recorder, T0 - timedelta(days=41), seed=5, sla=sla)
        d.create_queue("service-desk")
        d.create_queue("network")
        self.ann = d.register_agent("Ann", ["service-desk"], 5)
        self.bo = d.register_agent("Bo", ["service-desk", "network"], 5)
        self.ids: dict[str, UUID] = {}
        self.do(-40 * 24, "open", "E")
        self.do(0, "open", "A")
        self.do(1, "assign", "A", self.ann)
        self.do(2, "start", "A")
        self.do(3, "open", "B")
        self.do(4, "comment", "B", "on it")
        self.do(5, "escalate", "B")
        self.do(6, "cancel", "B")
        self.do(24, "resolve", "A")
        self.do(24, "open", "C")
        self.do(25, "rate", "A", 5)
        self.do(25, "assign", "C", self.bo)
        self.do(48, "resolve", "C")
        self.do(49, "reopen", "C")
        self.do(72, "resolve", "C")
        self.do(73, "rate", "C", 3)
        self.do(96, "open", "D")
        self.do(120, "open", "F", "network")
        self.do(121, "assign", "F", self.bo)
        self.do(123, "resolve", "F")
        self.views = Views(self.recorder, tmp)
        self.views.catch_up()

    def do(self, hours: float, action: str, name: str, *args: object) -> None:
        d = self.desk
        d.clock = at(hours)
        if d.sla:
            d.tick()  # the clock process records what fell due by now
        if action == "open":
            queue = str(args[0]) if args else "service-desk"
            self.ids[name] = d.open(name, "rita", queue, Level.MEDIUM, Level.MEDIUM)
            return
        getattr(d, action)(self.ids[name], *args)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.views.close()


@pytest.fixture
def sla_world(tmp_path: Path) -> Iterator[World]:
    """The same history with each ticket's SLA clock running (all P3: first response
    4 business hours, resolution 24; business hours Mon-Fri 09-17 UTC; T0 is a Monday)."""
    w = World(tmp_path, sla=True)
    yield w
    w.views.close()


def test_service_report_over_the_whole_period(world: World) -> None:
    report = world.views.service_report(T0, at(240))
    assert report.opened == 5  # A, B, C, D, F (E opened before the window)
    assert report.resolved == 3  # A, C (twice: counted once), F
    assert report.escalation_rate == pytest.approx(1 / 5)  # B
    # First responses: B 1h (reply), A 2h (started), F 3h (resolved), C 1d (resolved).
    assert report.first_response.count == 4
    assert report.first_response.median_seconds == 2.5 * H
    assert report.first_response.p90_seconds == 1 * D
    # Resolution: A 1d, C 2d (to its last resolution in the window), F 3h.
    assert report.resolution.count == 3
    assert report.resolution.median_seconds == 1 * D
    assert report.resolution.p90_seconds == 2 * D
    assert report.reopen_rate == pytest.approx(1 / 3)  # C
    assert (report.csat_average, report.csat_responses) == (4.0, 2)
    # Backlog as of the end: D (6 days old) and E (50 days old).
    assert report.backlog.total == 2
    assert (report.backlog.from_3d_to_7d, report.backlog.over_30d) == (1, 1)
    assert report.position == world.recorder.max_notification_id()


def test_backlog_and_counts_as_of_a_past_moment(world: World) -> None:
    report = world.views.service_report(T0, at(36))
    assert report.opened == 3  # A, B, C
    assert report.resolved == 1  # A; C's first resolution is at 48h
    # At 36h: C (opened 12h before, resolved later) and E are active.
    assert report.backlog.total == 2
    assert (report.backlog.under_1d, report.backlog.over_30d) == (1, 1)
    # An event exactly at ``to`` is outside the window: A resolves at 24h.
    edge = world.views.service_report(T0, at(24))
    assert edge.resolved == 0
    assert edge.backlog.total == 2  # A (resolving at 24h) and E; C opens at 24h: not yet


def test_service_report_for_one_queue(world: World) -> None:
    report = world.views.service_report(T0, at(240), queue="network")
    assert (report.opened, report.resolved) == (1, 1)
    assert report.first_response.median_seconds == 3 * H
    assert report.resolution.median_seconds == 3 * H
    assert (report.reopen_rate, report.escalation_rate) == (0.0, 0.0)
    assert (report.csat_average, report.csat_responses) == (None, 0)
    assert report.backlog.total == 0


def test_agent_report(world: World) -> None:
    report = world.views.agent_report(T0, at(240))
    rows = {row.name: row for row in report.agents}
    ann, bo = rows["Ann"], rows["Bo"]
    assert ann.resolved == 1 and ann.handle_time.median_seconds == 23 * H  # 1h -> 24h
    assert (ann.reopen_rate, ann.csat_average, ann.csat_responses) == (0.0, 5.0, 1)
    assert bo.resolved == 2  # C and F
    # C: assigned 25h, last resolved 72h (47h); F: 121h -> 123h (2h).
    assert bo.handle_time.median_seconds == (47 + 2) / 2 * H
    assert (bo.reopen_rate, bo.csat_average, bo.csat_responses) == (0.5, 3.0, 1)


def test_an_empty_window(world: World) -> None:
    report = world.views.service_report(at(1000), at(1001))
    assert (report.opened, report.resolved, report.csat_responses) == (0, 0, 0)
    assert report.reopen_rate is None and report.escalation_rate is None
    assert report.first_response.median_seconds is None
    assert report.backlog.total == 2  # D and E are still open
    with pytest.raises(ValueError):
        world.views.service_report(at(2), at(1))


def test_sla_compliance_in_the_service_report(sla_world: World) -> None:
    report = sla_world.views.service_report(T0, at(240))
    first, resolution = report.sla.first_response, report.sla.resolution
    # First responses in the window: A (2h), B (4h) and F (123h) on time; C's only at its
    # resolution (48h), after its due time (Tuesday 13:00): late.
    assert (first.measured, first.within_target, first.rate) == (4, 3, 0.75)
    # Breached: C (recorded at 48h), D (Friday 13:00, recorded at 120h) and E (opened 40
    # days before; recorded when the clock next ran, at T0).
    assert first.breached == 3
    # Resolutions: A (8 business hours), C (16, at its last resolution), F (0): on time.
    assert (resolution.measured, resolution.within_target, resolution.rate) == (3, 3, 1.0)
    assert resolution.breached == 1  # E

    # A window up to 36h: A and B responded, A resolved; E's breaches at T0.
    early = sla_world.views.service_report(T0, at(36)).sla
    assert (early.first_response.measured, early.first_response.breached) == (2, 1)
    assert (early.resolution.measured, early.resolution.rate) == (1, 1.0)

    # One queue: F in network, on time.
    network = sla_world.views.service_report(T0, at(240), queue="network").sla
    assert (network.first_response.measured, network.first_response.rate) == (1, 1.0)
    assert (network.resolution.measured, network.first_response.breached) == (1, 0)


def test_sla_compliance_per_agent(sla_world: World) -> None:
    rows = {row.name: row for row in sla_world.views.agent_report(T0, at(240)).agents}
    ann, bo = rows["Ann"].sla, rows["Bo"].sla
    assert (ann.first_response.measured, ann.first_response.rate) == (1, 1.0)  # A
    assert (ann.resolution.measured, ann.resolution.rate) == (1, 1.0)
    # Bo held C when its first response was breached and met late, and F.
    assert (bo.first_response.measured, bo.first_response.within_target) == (2, 1)
    assert bo.first_response.breached == 1
    assert (bo.resolution.measured, bo.resolution.within_target) == (2, 2)


def test_without_sla_events_compliance_is_empty(world: World) -> None:
    sla = world.views.service_report(T0, at(240)).sla
    assert (sla.first_response.measured, sla.first_response.rate) == (0, None)
    assert sla.resolution.breached == 0


def test_median_and_p90() -> None:
    assert duration_stats([]).median_seconds is None
    stats = duration_stats([3_000_000, 1_000_000, 2_000_000])
    assert (stats.count, stats.median_seconds, stats.p90_seconds) == (3, 2.0, 3.0)
    stats = duration_stats([i * 1_000_000 for i in range(1, 11)])  # 1..10 s
    assert (stats.median_seconds, stats.p90_seconds) == (5.5, 9.0)
