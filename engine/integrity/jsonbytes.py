"""Compact JSON bytes, exactly as ``json.dumps(value, separators=(",", ":"),
ensure_ascii=False).encode()`` writes them (optionally with sorted keys), in a fraction
of the time: envelopes and their hashes are written with it.

orjson writes the same bytes for strings (every code point but lone surrogates was
compared), booleans, null, integers, lists and dicts with string keys, and sorts keys
in the same (code point) order. Floats (written differently, e.g. ``1e16``), integers
beyond 2**53, other types, or anything orjson refuses go through ``json``, so the
bytes and the errors are always ``json``'s.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_SAFE_INT = 2**53


def _plain(value: Any) -> bool:
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
                if type(key) is not str:
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
