"""Reading stored events back from the notification log by position.

The audit view indexes the log (which events concern which ticket, when) rather than
copying it: a history or an export reads the envelopes themselves from the log, the
system of record, so the view stays small and quick to rebuild.
"""

from __future__ import annotations

from collections.abc import Iterable

from eventsourcing.persistence import ApplicationRecorder

from engine.integrity.keystore import KeyStore
from engine.integrity.personal import unseal
from engine.projections.kit.records import EventRecord, from_raw

RUN_GAP = 64
"""Positions closer than this are read with one range query rather than one each."""


class MissingEventError(LookupError):
    """A position the audit view names is not in the notification log."""


class LogReader:
    def __init__(self, recorder: ApplicationRecorder, keys: KeyStore | None) -> None:
        self.recorder = recorder
        self.keys = keys

    def raw(self, positions: Iterable[int]) -> dict[int, bytes]:
        """The stored envelope at each position."""
        wanted = sorted(set(positions))
        found: dict[int, bytes] = {}
        i = 0
        while i < len(wanted):
            j = i
            while j + 1 < len(wanted) and wanted[j + 1] - wanted[j] < RUN_GAP:
                j += 1
            first, last = wanted[i], wanted[j]
            for n in self.recorder.select_notifications(
                start=first, limit=last - first + 1, stop=last
            ):
                found[n.id] = n.state
            i = j + 1
        missing = [p for p in wanted if p not in found]
        if missing:
            raise MissingEventError(f"positions {missing[:5]} are not in the log")
        return {p: found[p] for p in wanted}

    def records(self, positions: Iterable[int]) -> dict[int, EventRecord]:
        """The events at these positions, personal fields in clear (``[erased]`` once
        their subject's key is destroyed)."""
        out = {}
        for position, raw in self.raw(positions).items():
            record = from_raw(position, raw)
            record["data"] = unseal(self.keys, record["data"])
            out[position] = record
        return out
