"""Opaque page cursors: the sort key of a page's last row, base64url JSON.

A cursor names its kind, so a queue page's cursor is refused by a search."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any


class InvalidCursorError(ValueError):
    """The cursor was not made by this kind of query."""


def encode_cursor(kind: str, values: Sequence[Any]) -> str:
    text = json.dumps([kind, *values], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(kind: str, token: str, size: int) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidCursorError(f"not a {kind} cursor") from None
    if not isinstance(values, list) or len(values) != size + 1 or values[0] != kind:
        raise InvalidCursorError(f"not a {kind} cursor")
    if not all(isinstance(v, int | str) and not isinstance(v, bool) for v in values[1:]):
        raise InvalidCursorError(f"not a {kind} cursor")
    return values[1:]
