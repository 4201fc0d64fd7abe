"""Merkle roots over stream heads, Ed25519 signatures, and inclusion proofs.

A leaf is ``sha256("leaf\\n" aggregate_id "\\n" version "\\n" head_hash)``; leaves are
sorted by aggregate id; an odd node is promoted unchanged. A checkpoint signs
``"ticketing-checkpoint/1\\n" position "\\n" stream_count "\\n" root``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

Heads = Mapping[str, tuple[int, str]]  # aggregate id -> (version, head hash)


def leaf(aggregate_id: str, version: int, head_hash: str) -> bytes:
    return hashlib.sha256(f"leaf\n{aggregate_id}\n{version}\n{head_hash}".encode()).digest()


def _parent(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"node\n" + left + right).digest()


def _levels(leaves: list[bytes]) -> list[list[bytes]]:
    levels = [leaves]
    while len(levels[-1]) > 1:
        current = levels[-1]
        nxt = [
            _parent(current[i], current[i + 1]) if i + 1 < len(current) else current[i]
            for i in range(0, len(current), 2)
        ]
        levels.append(nxt)
    return levels


def sorted_leaves(heads: Heads) -> tuple[list[str], list[bytes]]:
    ids = sorted(heads)
    return ids, [leaf(a, heads[a][0], heads[a][1]) for a in ids]


def merkle_root(heads: Heads) -> str:
    _, leaves = sorted_leaves(heads)
    if not leaves:
        return hashlib.sha256(b"empty").hexdigest()
    return _levels(leaves)[-1][0].hex()


def inclusion_proof(heads: Heads, aggregate_id: str) -> list[tuple[str, str]]:
    """Sibling hashes from the leaf up: (side, hex) with side 'L' or 'R' of the sibling."""
    ids, leaves = sorted_leaves(heads)
    index = ids.index(aggregate_id)
    proof: list[tuple[str, str]] = []
    for level in _levels(leaves)[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(("L" if sibling < index else "R", level[sibling].hex()))
        index //= 2
    return proof


def root_from_proof(leaf_hash: bytes, proof: list[tuple[str, str]]) -> str:
    node = leaf_hash
    for side, sibling in proof:
        other = bytes.fromhex(sibling)
        node = _parent(other, node) if side == "L" else _parent(node, other)
    return node.hex()


def signed_message(position: int, stream_count: int, root: str) -> bytes:
    return f"ticketing-checkpoint/1\n{position}\n{stream_count}\n{root}".encode()


class Signer:
    """The engine's Ed25519 signing key (from configuration or the data directory)."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        raw = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.public_key = base64.b64encode(raw).decode()

    @classmethod
    def from_b64(cls, seed_b64: str) -> Signer:
        seed = base64.b64decode(seed_b64)
        if len(seed) != 32:
            raise ValueError("the signing key is 32 bytes (an Ed25519 seed), base64-encoded")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def load_or_create(cls, path: Path) -> Signer:
        if path.exists():
            return cls.from_b64(path.read_text().strip())
        key = Ed25519PrivateKey.generate()
        seed = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        path.write_text(base64.b64encode(seed).decode() + "\n")
        path.chmod(0o600)
        return cls(key)

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self._key.sign(message)).decode()


def verify_signature(public_key_b64: str, message: bytes, signature_b64: str) -> bool:
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64))
        key.verify(base64.b64decode(signature_b64), message)
    except (InvalidSignature, ValueError):
        return False
    return True
