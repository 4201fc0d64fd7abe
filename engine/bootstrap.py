"""The composition root: build the whole runtime from one settings object.

Nothing connects to SQLite or Kafka at import time; ``build_runtime`` does it all.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from uuid import uuid4

from eventsourcing.persistence import PersistenceError
from prometheus_client.core import Metric

from engine.app.application import TicketingApp
from engine.app.desk import Desk
from engine.app.errors import ConflictError
from engine.app.metrics import Lag, gauge, lag_figures, recorded_at
from engine.app.permissions import Principal
from engine.domain import directory as dirs
from engine.domain.base import CommandMeta
from engine.domain.commands.directory import BootstrapAdmin, new_api_key
from engine.integrity.checkpoint import Signer
from engine.integrity.keystore import SQLiteKeyStore
from engine.processes.checkpoints import CheckpointProcess
from engine.processes.sla_clock import start_clock
from engine.settings import Settings

log = logging.getLogger("ticketing")
PRINCIPAL_TTL_S = 5.0


class StartupError(Exception):
    """The engine cannot start with this configuration or environment."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@runtime_checkable
class DivergenceAware(Protocol):
    """An event store that can find its copy of the log diverged from the log (the
    Kafka cache): it then refuses reads and appends with the error it reports here."""

    @property
    def diverged(self) -> Exception | None: ...

    @property
    def head(self) -> int: ...

    def check_serving(self) -> None: ...


@dataclass
class Runtime:
    settings: Settings
    app: TicketingApp
    desk: Desk
    signer: Signer
    clock: Callable[[], datetime] = utc_now
    views: Any = None
    admin_key_created: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    stopping: threading.Event = field(default_factory=threading.Event)
    _principals: dict[str, tuple[float, Principal]] = field(default_factory=dict)

    def checkpoint(self) -> dict[str, Any]:
        """Record a signed checkpoint of every stream's head now."""
        process: CheckpointProcess = self.extras["checkpoints"]
        return process.record()

    def store_diverged(self) -> Exception | None:
        """Why the event store stopped serving its history, if it did: then every
        command and read is refused with this error (HTTP 503)."""
        recorder = self.app.recorder
        return recorder.diverged if isinstance(recorder, DivergenceAware) else None

    def refuse_if_diverged(self) -> None:
        """Raise the store's divergence, if it diverged (before serving anything)."""
        recorder = self.app.recorder
        if isinstance(recorder, DivergenceAware):
            recorder.check_serving()

    def known_principal(self, api_key: str, now: float | None = None) -> Principal | None:
        """The key's principal if it is remembered and fresh; never reads the store."""
        cached = self._principals.get(api_key)
        now = time.monotonic() if now is None else now
        if cached is not None and now - cached[0] < PRINCIPAL_TTL_S:
            return cached[1]
        return None

    def principal_for(self, api_key: str) -> Principal | None:
        """The key's principal; known keys are remembered for PRINCIPAL_TTL_S seconds
        (a revocation takes effect within that time), unknown keys are not."""
        now = time.monotonic()
        known = self.known_principal(api_key, now)
        if known is not None:
            return known
        credential = self.app.aggregates.credential(api_key)
        if credential is None or credential.revoked:
            self._principals.pop(api_key, None)
            return None
        principal = Principal(
            id=credential.principal_id,
            name=credential.name,
            role=credential.role,
            agent_id=credential.agent_id,
        )
        if len(self._principals) > 10_000:
            self._principals.clear()
        self._principals[api_key] = (now, principal)
        return principal

    def close(self) -> None:
        """Stop background work and close the stores; safe to call more than once."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        if self.views is not None:
            self.views.close()
        if (process := self.extras.get("clock")) is not None:
            process.stop()
        self.app.close()


def derived_paths(settings: Settings) -> list[Path]:
    """The local files and folders derived from the log (all rebuildable from it): the
    views, the SLA clock's tracking, and in the Kafka mode the store's local state
    (projection tracking, process events, snapshots). Never the keys nor the signing key."""
    from engine.processes.sla_clock import TRACKING_FILE

    paths = [settings.data_dir / "views", settings.data_dir / TRACKING_FILE]
    if settings.uses_kafka:
        from engine.stores.kafka.settings import KafkaSettings

        kafka = KafkaSettings.from_env(kafka_environment(settings))
        paths.append(kafka.local_db_path)
    return paths


def kafka_environment(settings: Settings) -> Any:
    """The Kafka store's environment as the application reads it (process environment,
    then the settings), for the operator's tools that act on the store directly."""
    from eventsourcing.utils import Environment

    from engine.app.application import TicketingApp

    return Environment(TicketingApp.name, {**os.environ, **settings.store_env()})


# Only the engine's own user may read the data: events, views, exports, keys.
DATA_DIR_MODE = 0o700
DATA_FILE_MODE = 0o600
PRIVATE_UMASK = 0o077  # what every file and directory the engine creates leaves out
MAX_MODE_WARNINGS = 20


def restrict_umask() -> None:
    """From now on this process creates files and directories for its owner only: the
    SQLite files and their -wal, -shm and -journal side files, views and their rebuilds,
    the Kafka cache, keys, exports. (The umask is the one setting that reaches files
    libraries create, such as SQLite's; it is process-wide, so it is only narrowed.)"""
    previous = os.umask(PRIVATE_UMASK)
    os.umask(previous | PRIVATE_UMASK)


def private_open(path: Path) -> int:
    """A file descriptor for writing ``path`` afresh, created DATA_FILE_MODE (an
    existing file keeps its mode: its owner chose it)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, DATA_FILE_MODE)


def wider_than_private(*roots: Path) -> list[str]:
    """A warning for every directory or file under ``roots`` (and each root itself) that
    other users may read: its path, the mode found and the fix."""
    found: list[str] = []

    def check(path: Path, is_dir: bool) -> None:
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            return
        if stat.S_ISLNK(mode) or not mode & PRIVATE_UMASK:
            return
        wanted = DATA_DIR_MODE if is_dir else DATA_FILE_MODE
        kind = "data directory" if is_dir else "data file"
        found.append(
            f"{kind} {path} has mode {stat.S_IMODE(mode):04o}: other users can read it; "
            f"fix: chmod {wanted:o} {path}"
        )

    for root in roots:
        if root.is_dir():
            check(root, True)
            for top, dirs, files in os.walk(root):
                for name in dirs:
                    check(Path(top, name), True)
                for name in files:
                    check(Path(top, name), False)
        else:
            check(root, False)
    return found


def prepare_data_dir(path: Path, *also: Path) -> None:
    """Create the data directory (mode DATA_DIR_MODE), or refuse to start with a clear
    reason; warn about every file in it (and in ``also``) that other users can read."""
    restrict_umask()
    try:
        path.mkdir(mode=DATA_DIR_MODE, parents=True, exist_ok=True)
    except OSError as e:
        raise StartupError(f"cannot create data directory {path}: {e.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise StartupError(f"data directory {path} is not writable")
    warnings = wider_than_private(path, *also)
    for warning in warnings[:MAX_MODE_WARNINGS]:
        log.warning(warning)
    if len(warnings) > MAX_MODE_WARNINGS:
        log.warning(
            f"{len(warnings) - MAX_MODE_WARNINGS} more paths in {path} that other users can "
            f"read; fix: chmod -R go-rwx {path}"
        )


def bootstrap_admin(desk: Desk, key: str | None) -> str | None:
    """On the very first start, record the admin credential; return the new key (None
    when another start recorded one first)."""
    if desk.app.aggregates.events(dirs.BOOTSTRAP_ID):
        return None
    api_key = key or new_api_key()
    meta = CommandMeta(actor="system", occurred_at=desk.clock(), correlation_id=uuid4())
    try:
        desk.runner.append(desk.runner.decide(BootstrapAdmin(api_key=api_key), meta))
    except ConflictError:
        return None
    return api_key


def build_runtime(
    settings: Settings,
    clock: Callable[[], datetime] = utc_now,
    start_views: bool = True,
) -> Runtime:
    key_store = settings.key_store or settings.data_dir / "keys.sqlite"
    prepare_data_dir(settings.data_dir, *([key_store] if settings.key_store else []))
    try:
        keys = SQLiteKeyStore(key_store)
        signer = (
            Signer.from_b64(settings.signing_key)
            if settings.signing_key
            else Signer.load_or_create(settings.data_dir / "signing.key")
        )
    except (OSError, sqlite3.Error, ValueError) as e:
        raise StartupError(f"cannot open the key store or signing key: {e}") from None
    try:
        app = TicketingApp(
            env=settings.store_env(),
            matrix=settings.matrix(),
            reopen_window=timedelta(days=settings.reopen_window_days),
            keys=keys,
        )
        desk = Desk(app, clock)
        created = bootstrap_admin(desk, settings.bootstrap_admin_key)
    except (OSError, sqlite3.Error, PersistenceError) as e:
        where = settings.event_topic if settings.uses_kafka else settings.data_dir / "events.sqlite"
        raise StartupError(f"cannot open the event store ({where}): {e}") from None
    runtime = Runtime(
        settings=settings,
        app=app,
        desk=desk,
        signer=signer,
        clock=clock,
        admin_key_created=created,
    )
    if start_views and settings.projections == "in-process":
        runtime.views = start_projections(app, settings.data_dir)
    runtime.extras["checkpoints"] = checkpoints = CheckpointProcess(desk.runner, signer, clock)
    if start_views:
        checkpoints.start(settings.checkpoint_interval_s, runtime.stopping)
    if start_views and settings.clock == "in-process":
        runtime.extras["clock"] = start_clock(
            app, settings.data_dir, clock, settings.clock_interval_s, runtime.stopping
        )
    app.metrics.watch(lambda: runtime_figures(runtime))
    return runtime


def runtime_figures(runtime: Runtime) -> list[Metric]:
    """What /metrics reads at scrape time: the log's head, each view's and the SLA
    clock's lag behind it, and in Kafka mode the writer role, lease, tailer and cache."""
    recorder = runtime.app.recorder
    store = recorder if isinstance(recorder, DivergenceAware) else None
    # A diverged store serves no history: its head is the cache's, and no lag is read.
    diverged = store is not None and store.diverged is not None
    head = store.head if store is not None and diverged else recorder.max_notification_id() or 0
    figures: list[Metric] = [gauge("ticketing_log_head_position", "The log's last position", head)]

    def lag(position: int) -> Lag:
        first = recorder.select_notifications(position, 1, inclusive_of_start=False)
        since = recorded_at(first[0].state) if first and position < head else None
        return Lag(position, head, since)

    if not diverged and runtime.views is not None:
        views = {name: lag(p) for name, p in runtime.views.positions().items()}
        figures += lag_figures(
            "ticketing_projection_lag", "How far each view is behind the log", views, "view"
        )
    if not diverged and (process := runtime.extras.get("clock")) is not None:
        figures += lag_figures(
            "ticketing_sla_clock_lag",
            "How far the SLA clock is behind the log",
            {"sla_clock": lag(process.position)},
            "process",
        )
    # The Kafka store's own figures (engine.stores.kafka.log.KafkaEventLog.stats).
    stats = getattr(getattr(recorder, "log", None), "stats", None)
    for name, value in (stats() if callable(stats) else {}).items():
        figures.append(gauge(f"ticketing_kafka_{name}", KAFKA_FIGURES[name], value))
    return figures


KAFKA_FIGURES = {
    "writer": "1 if this process holds the topic's writer role, else 0",
    "lease_epoch": "The epoch of the writer lease this process has seen last",
    "cache_events": "Events in this process's cache of the topic",
    "tailer_lag_records": "Records of the topic the cache has not read yet",
    "diverged": "1 if the topic no longer holds what the cache copied (nothing is served)",
}


def start_projections(app: TicketingApp, data_dir: Path) -> Any:
    """Start the views on the app's notification log (see engine.projections)."""
    from engine.projections import Views

    views = Views(app.recorder, data_dir, keys=app.keys)
    app.listeners.append(views.notify)
    views.start()
    return views
