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
code point order, which is UTF-16 order for keys that are ASCII. ``canonical_json``
takes ``json``'s bytes for floats that ``repr`` writes positionally with a fraction
(``0.75``): ``rfc8785`` starts from the same ``repr`` and keeps it. Anything else (other
floats, larger integers, other keys or types, what orjson refuses) goes through
``rfc8785`` or ``json``, so the bytes and the errors are always theirs.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import rfc8785

_SAFE_INT = 2**53


_PLAIN, _PLAIN_FLOATS, _OTHER = 0, 1, 2


def _kind(value: Any, *, ascii_keys: bool = False) -> int:
    """``_PLAIN`` if orjson writes ``value`` as json does (no floats), ``_PLAIN_FLOATS``
    if json writes it as RFC 8785 does (floats in positional notation with a fraction,
    ASCII keys), else ``_OTHER``."""
    kind_found = _PLAIN
    todo = [value]
    while todo:
        item = todo.pop()
        kind = type(item)
        if kind is str or item is None or kind is bool:
            continue
        if kind is int:
            if not -_SAFE_INT < item < _SAFE_INT:
                return _OTHER
        elif kind is float:
            # json writes repr(); RFC 8785 writes the same digits unless repr uses an
            # exponent or ends in ".0" (1e-05, 1e+16, 2.0, -0.0), or it is no number.
            text = repr(item)
            if not math.isfinite(item) or "e" in text or text.endswith(".0"):
                return _OTHER
            kind_found = _PLAIN_FLOATS
        elif kind is dict:
            for key in item:
                if type(key) is not str or (ascii_keys and not key.isascii()):
                    return _OTHER
            todo.extend(item.values())
        elif kind is list:
            todo.extend(item)
        else:
            return _OTHER
    return kind_found


def compact_json(value: Any, *, sort_keys: bool = False) -> bytes:
    if _kind(value) == _PLAIN:
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
    kind = _kind(value, ascii_keys=True)
    try:
        if kind == _PLAIN:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        if kind == _PLAIN_FLOATS:
            return compact_json(value, sort_keys=True)  # json's bytes: see _kind
    except (TypeError, UnicodeEncodeError):
        pass  # e.g. a lone surrogate: rfc8785 raises its own error below
    return rfc8785.dumps(value)


def refuse_large_floats(value: Any) -> None:
    """Raise ``rfc8785.FloatDomainError`` for a float from 2**53 to below 1e21 in
    magnitude in ``value``.

    RFC 8785 writes such a float as integer digits (from 1e21 on, with an exponent),
    which a reader parses back as an integer that RFC 8785 cannot write (and that may
    not equal the float): bytes holding it could not be recomputed from what they say.
    Envelopes refuse it, as they refuse such integers, so that every envelope reads back
    (with Python's json) as a value whose RFC 8785 bytes are the envelope's own."""
    todo = [value]
    while todo:
        item = todo.pop()
        if type(item) is float and _SAFE_INT <= abs(item) < 1e21:
            raise rfc8785.FloatDomainError(item)
        if isinstance(item, dict):
            todo.extend(item.values())
        elif isinstance(item, list | tuple):
            todo.extend(item)
