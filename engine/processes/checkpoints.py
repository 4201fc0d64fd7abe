"""The checkpoint process: records a signed checkpoint (the Merkle root of every
stream's head at a log position) on demand and every ``interval`` seconds."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import uuid4

from engine.app.audit import Progress, scan
from engine.app.errors import ConflictError
from engine.app.repository import Repository
from engine.app.runner import Handler, Runner
from engine.domain.audit import CHECKPOINTS_ID
from engine.domain.base import CommandMeta
from engine.domain.commands.processes import RecordCheckpoint, record_checkpoint
from engine.integrity.checkpoint import Signer, merkle_root, signed_message
from engine.stores.envelope import decode_envelope

log = logging.getLogger("ticketing.checkpoints")
ACTOR = "system"
ATTEMPTS = 5


def _last_checkpoint(repo: Repository, c: RecordCheckpoint) -> int:
    return repo.last_version(CHECKPOINTS_ID)


HANDLER: Handler[RecordCheckpoint, int] = Handler(None, _last_checkpoint, record_checkpoint)


class CheckpointProcess:
    """Signs checkpoints with ``signer``; ``now`` stamps them."""

    def __init__(self, runner: Runner, signer: Signer, now: Callable[[], datetime]) -> None:
        self.runner = runner
        self.signer = signer
        self.now = now
        runner.register(RecordCheckpoint, HANDLER)
        self._thread: threading.Thread | None = None

    def record(self, progress: Progress | None = None) -> dict[str, Any]:
        """Sign the Merkle root of every stream's head as of the current log position."""
        recorder = self.runner.app.recorder
        position = recorder.max_notification_id() or 0
        heads: dict[str, tuple[int, str]] = {}
        for _, state in scan(recorder, progress, stop=position):
            envelope = decode_envelope(state)
            heads[str(envelope["aggregate_id"])] = (
                int(envelope["aggregate_version"]),
                str(envelope["hash"]),
            )
        root = merkle_root(heads)
        command = RecordCheckpoint(
            position=position,
            stream_count=len(heads),
            merkle_root=root,
            public_key=self.signer.public_key,
            signature=self.signer.sign(signed_message(position, len(heads), root)),
        )
        for _attempt in range(ATTEMPTS):
            meta = CommandMeta(actor=ACTOR, occurred_at=self.now(), correlation_id=uuid4())
            try:
                recordings = self.runner.append(self.runner.decide(command, meta))
            except ConflictError:
                continue  # another process recorded a checkpoint meanwhile: chain to it
            return {
                "position": position,
                "stream_count": len(heads),
                "merkle_root": root,
                "public_key": self.signer.public_key,
                "recorded_at_position": recordings[-1].notification.id,
            }
        raise ConflictError(f"could not record the checkpoint after {ATTEMPTS} attempts")

    def start(self, interval_s: float, stopping: threading.Event) -> None:
        """Record one every ``interval_s`` seconds until ``stopping`` is set."""
        if interval_s <= 0:
            return

        def loop() -> None:
            while not stopping.wait(interval_s):
                try:
                    self.record()
                except Exception:  # keep serving; the next interval tries again
                    log.exception("periodic checkpoint failed")

        self._thread = threading.Thread(target=loop, name="checkpoints", daemon=True)
        self._thread.start()
