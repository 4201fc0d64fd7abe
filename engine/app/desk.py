"""The desk as its clients use it: ``send`` a command, or ask ``queries``.

Commands go through the one runner (engine.app.runner) with the handler table
(engine.app.handlers); time comes from the injected clock, never from the domain.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

from engine.app.application import TicketingApp
from engine.app.handlers import HANDLERS
from engine.app.permissions import Principal
from engine.app.queries import Queries
from engine.app.results import CommandResult
from engine.app.runner import Idempotency, Runner
from engine.domain.commands.base import Command


class Desk:
    """Commands and queries for the API and the CLI."""

    def __init__(self, app: TicketingApp, clock: Callable[[], datetime]) -> None:
        self.app = app
        self.clock = clock
        self.runner = Runner(app, HANDLERS, clock)
        self.queries = Queries(app.aggregates, clock)

    def send(
        self,
        principal: Principal,
        command: Command,
        *,
        idem: Idempotency | None = None,
        if_match: str | None = None,
    ) -> CommandResult:
        """Decide and record ``command`` once (exactly once per Idempotency-Key)."""
        name = type(command).__name__
        try:
            result = self.runner.send(principal, command, idem=idem, if_match=if_match)
        except Exception as e:
            self.app.metrics.commands.labels(name, outcome(e)).inc()
            raise
        self.app.metrics.commands.labels(name, "replayed" if result.replayed else "recorded").inc()
        return result


def outcome(error: Exception) -> str:
    """A refusal's name for /metrics: the error's type, in snake case, without "Error"."""
    words = re.findall(r"[A-Z][a-z0-9]*", type(error).__name__.removesuffix("Error"))
    return "_".join(w.lower() for w in words) or "error"
