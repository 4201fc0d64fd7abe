"""The desk as its clients use it: ``send`` a command, or ask ``queries``.

Commands go through the one runner (engine.app.runner) with the handler table
(engine.app.handlers); time comes from the injected clock, never from the domain.
"""

from __future__ import annotations

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
        return self.runner.send(principal, command, idem=idem, if_match=if_match)
