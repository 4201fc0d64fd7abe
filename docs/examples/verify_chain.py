#!/usr/bin/env python3
"""Recompute every hash chain of a ticketing event stream, without the engine's code.

Needs Python 3.9+ and the ``rfc8785`` package only. Reads JSON lines from the files
named (or stdin), each one of:

- a record as ``kcat -C -J`` prints it (the envelope is the string in ``payload``);
- a line of ``GET /events`` (``{"position": N, "event": {...envelope...}}``);
- an envelope.

Lines must come in log order (topic order). Prints ``{"ok": ..., "events": ...,
"streams": ..., "first_break": ...}`` and exits 0 if every chain holds, 1 at the first
broken link, 2 on unreadable input.

The rule (README, "Audit integrity and privacy"; docs/kafka.md, "Verify the chains"):
``hash`` is the SHA-256, in lower-case hex, of the envelope without its ``hash`` member,
written as

- RFC 8785 canonical JSON, when the envelope has ``"envelope_version": 2``;
- ``json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
  encoded as UTF-8, when it has no ``envelope_version`` (envelopes written before it
  existed);

and ``prev_hash`` is the ``hash`` of the previous event of the same aggregate
(``aggregate_id``), ``null`` at ``aggregate_version`` 1. Versions of an aggregate run
1, 2, 3, ... without gaps.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import rfc8785


def hash_input(envelope: dict[str, Any]) -> bytes:
    body = {key: value for key, value in envelope.items() if key != "hash"}
    if "envelope_version" not in envelope:
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return text.encode("utf-8")
    version = envelope["envelope_version"]
    if type(version) is int and version == 2:
        return rfc8785.dumps(body)
    raise ValueError(f"unknown envelope_version {version!r}")


def envelope_of(line: str) -> dict[str, Any]:
    record = json.loads(line)
    if "payload" in record:  # kcat -J
        return dict(json.loads(record["payload"]))
    if "event" in record and "position" in record:  # GET /events
        return dict(record["event"])
    return dict(record)


def verify(lines: Iterable[str]) -> dict[str, Any]:
    heads: dict[str, tuple[int, str]] = {}  # aggregate id -> (version, hash)
    events = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        envelope = envelope_of(line)
        events += 1
        problem = check(envelope, heads)
        if problem is not None:
            where = {"line": number, "aggregate_id": envelope["aggregate_id"],
                     "aggregate_version": envelope["aggregate_version"]}  # fmt: skip
            return {"ok": False, "events": events, "streams": len(heads),
                    "first_break": {**where, **problem}}  # fmt: skip
    return {"ok": True, "events": events, "streams": len(heads), "first_break": None}


def check(envelope: dict[str, Any], heads: dict[str, tuple[int, str]]) -> dict[str, Any] | None:
    """None if the envelope continues its aggregate's chain (and records it as the head),
    else what is wrong."""
    aggregate, version = envelope["aggregate_id"], envelope["aggregate_version"]
    last_version, last_hash = heads.get(aggregate, (0, None))
    if version != last_version + 1:
        return broken("events missing or out of order", last_version + 1, version)
    if envelope["prev_hash"] != last_hash:
        return broken("prev_hash does not link", last_hash, envelope["prev_hash"])
    try:
        recomputed = hashlib.sha256(hash_input(envelope)).hexdigest()
    except ValueError as e:  # an unknown envelope_version, NaN, a lone surrogate
        return broken("content cannot be hashed", None, str(e))
    if envelope["hash"] != recomputed:
        return broken("content does not match its hash", recomputed, envelope["hash"])
    heads[aggregate] = (version, recomputed)
    return None


def broken(problem: str, expected: Any, found: Any) -> dict[str, Any]:
    return {"problem": problem, "expected": expected, "found": found}


def main(paths: list[str]) -> int:
    try:
        if paths:
            lines = [line for path in paths for line in Path(path).read_text("utf-8").splitlines()]
        else:
            lines = list(sys.stdin)
        report = verify(lines)
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"verify_chain: unreadable input: {e!r}", file=sys.stderr)
        return 2
    print(json.dumps(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
