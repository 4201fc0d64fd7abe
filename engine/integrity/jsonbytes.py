"""JSON bytes for envelopes and their hashes, written fast.

``canonical_json`` writes RFC 8785 (JSON Canonicalization Scheme) bytes, exactly as
the ``rfc8785`` package does: no whitespace, keys sorted by their UTF-16 code units,
strings in UTF-8 with only ``"``, ``\\`` and control characters escaped (``\\b \\t \\n
\\f \\r`` or ``\\u00xx``), numbers as ECMAScript writes them (``1.0`` is ``1``,
``1e-05`` is ``0.00001``). Envelopes since ``envelope_version`` 2 are written and
hashed with it.

``compact_json`` writes exactly what ``json.dumps(value, separators=(",", ":"),
ensure_ascii=False).encode()`` writes (optionally with sorted keys): the hash input of
envelopes written before ``envelope_version`` 2 (see engine.integrity.chain).

Both take orjson's bytes where they are provably the same: orjson writes the same bytes
as both for strings (every code point but lone surrogates was compared), booleans,
null, integers within +-(2**53 - 1), lists and dicts with string keys, and sorts keys in
code point order, which is UTF-16 order for keys that are ASCII. Anything else (floats,
larger integers, other keys or types, what orjson refuses) goes through ``rfc8785`` or
``json``, so the bytes and the errors are always theirs.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import rfc8785

_SAFE_INT = 2**53


def _plain(value: Any, *, ascii_keys: bool = False) -> bool:
    todo = [value]
    while todo:
        item = todo.pop()
        kind = type(item)
        if kind is str or item is None or kind is bool:
            continue
        if kind is int:
            if not -_SAFE_INT < item < _SAFE_INT:
                return False
        elif kind is dict:
            for key in item:
                if type(key) is not str or (ascii_keys and not key.isascii()):
                    return False
            todo.extend(item.values())
        elif kind is list:
            todo.extend(item)
        else:
            return False
    return True


def compact_json(value: Any, *, sort_keys: bool = False) -> bytes:
    if _plain(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else None)
        except TypeError:
            pass  # e.g. a lone surrogate: json raises its own error below
    text = json.dumps(value, sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def canonical_json(value: Any) -> bytes:
    """RFC 8785 bytes of ``value``; raises ``rfc8785.CanonicalizationError`` (a
    ``ValueError``) for what has none: NaN, infinities, integers beyond +-(2**53 - 1),
    lone surrogates, keys that are not strings."""
    if _plain(value, ascii_keys=True):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            pass  # e.g. a lone surrogate: rfc8785 raises its own error below
    return rfc8785.dumps(value)
