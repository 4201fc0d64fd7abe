"""Tamper evidence: a hash chain per aggregate stream.

Each envelope carries ``hash`` = SHA-256 (lower-case hex) of the envelope without its
``hash`` member, written as bytes by the rule of its ``envelope_version``, and
``prev_hash`` = the hash of the previous event of the same aggregate (null for version
1). The hash covers the encrypted form of personal data, so erasing a data subject's key
leaves every chain verifiable.

The rules, by ``envelope_version`` (docs/kafka.md, "Verify the chains"):

- ``2`` (every envelope written now): RFC 8785 canonical JSON.
- absent (envelopes written before version 2 existed): Python's
  ``json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
  encoded as UTF-8. It equals RFC 8785 except for floats (``1.0``, ``1e-05``), integers
  beyond 2**53 and keys outside the Basic Multilingual Plane, so stores written before
  the change still verify, byte for byte, by the rule they were written with.

Any other ``envelope_version`` is refused: its rule is unknown.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from engine.integrity.jsonbytes import canonical_json, compact_json

ENVELOPE_VERSION = 2  # what every new envelope is written with
LEGACY_ENVELOPE_VERSION = 1  # what an envelope without ``envelope_version`` is


class UnknownEnvelopeVersionError(ValueError):
    """An envelope names an ``envelope_version`` whose hash rule is unknown."""


def envelope_version(envelope: dict[str, Any]) -> int:
    """The envelope's version (1 when it has none); raises ``UnknownEnvelopeVersionError``."""
    if "envelope_version" not in envelope:
        return LEGACY_ENVELOPE_VERSION
    version = envelope["envelope_version"]
    if type(version) is not int or version != ENVELOPE_VERSION:
        raise UnknownEnvelopeVersionError(f"unknown envelope_version {version!r}")
    return version


def canonical_bytes(envelope: dict[str, Any]) -> bytes:
    """The hash input: the envelope without ``hash``, by its version's rule; raises
    ``ValueError`` for an unknown version or a value the rule cannot write."""
    body = {k: v for k, v in envelope.items() if k != "hash"}
    if envelope_version(envelope) == LEGACY_ENVELOPE_VERSION:
        return compact_json(body, sort_keys=True)
    return canonical_json(body)


def envelope_hash(envelope: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(envelope)).hexdigest()


@dataclass(frozen=True)
class Break:
    """The first broken link found: which event, what was expected, what was found."""

    position: int | None
    aggregate_id: str
    aggregate_version: int
    problem: str
    expected: str | None
    found: str | None

    def describe(self) -> str:
        where = f"position {self.position}, " if self.position is not None else ""
        return (
            f"{where}aggregate {self.aggregate_id} version {self.aggregate_version}: "
            f"{self.problem} (expected {self.expected}, found {self.found})"
        )


@dataclass
class StreamHead:
    version: int
    hash: str
    position: int | None


class ChainVerifier:
    """Feed envelopes in log order; the first broken link is kept in ``broken``."""

    def __init__(self) -> None:
        self.heads: dict[str, StreamHead] = {}
        self.broken: Break | None = None
        self.count = 0

    def feed(self, envelope: dict[str, Any], position: int | None = None) -> Break | None:
        if self.broken is not None:
            return self.broken
        self.count += 1
        aggregate = str(envelope.get("aggregate_id"))
        version = envelope.get("aggregate_version")
        if not isinstance(version, int):
            return self._fail(position, aggregate, -1, "version is not an integer", None, None)
        head = self.heads.get(aggregate)
        expected_version = head.version + 1 if head else 1
        if version != expected_version:
            problem = (
                "events missing or out of order"
                if version > expected_version
                else ("event repeated or out of order")
            )
            return self._fail(
                position, aggregate, version, problem, str(expected_version), str(version)
            )
        expected_prev = head.hash if head else None
        found_prev = envelope.get("prev_hash")
        if found_prev != expected_prev:
            return self._fail(
                position,
                aggregate,
                version,
                "prev_hash does not link to the previous event",
                expected_prev,
                found_prev,
            )
        try:
            recomputed = envelope_hash(envelope)
        except ValueError as e:  # an unknown version, NaN, a lone surrogate
            problem = "content cannot be hashed"
            return self._fail(position, aggregate, version, problem, None, str(e))
        if envelope.get("hash") != recomputed:
            return self._fail(
                position,
                aggregate,
                version,
                "content does not match its hash",
                recomputed,
                envelope.get("hash"),
            )
        self.heads[aggregate] = StreamHead(version, recomputed, position)
        return None

    def _fail(
        self,
        position: int | None,
        aggregate: str,
        version: int,
        problem: str,
        expected: str | None,
        found: str | None,
    ) -> Break:
        self.broken = Break(position, aggregate, version, problem, expected, found)
        return self.broken


def verify_envelopes(items: Iterable[tuple[int | None, dict[str, Any]]]) -> ChainVerifier:
    verifier = ChainVerifier()
    for position, envelope in items:
        if verifier.feed(envelope, position) is not None:
            break
    return verifier
