"""engine.integrity.jsonbytes writes exactly json.dumps's compact bytes, whatever the value: the
envelope format and every hash in the chain depend on it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.integrity.jsonbytes import compact_json


def reference(value: Any, sort_keys: bool) -> bytes:
    text = json.dumps(value, sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(json_values, st.booleans())
def test_the_bytes_are_json_dumps_bytes(value: Any, sort_keys: bool) -> None:
    assert compact_json(value, sort_keys=sort_keys) == reference(value, sort_keys)


@pytest.mark.parametrize(
    "value",
    [
        2**53,
        -(2**53),
        2**64,
        1e16,
        1e-7,
        0.1,
        '\x00\x1f\x7f\u2028\u2029\ufeff\U0001f600"\\/',
        {"é": 1, "e": 2, "\U0001f600": 3, "\uffff": 4, "Z": 5},
        {1: "int keys become strings"},
        ("a", "tuple"),
    ],
)
def test_edge_values_are_written_as_json_writes_them(value: Any) -> None:
    for sort_keys in (False, True):
        assert compact_json(value, sort_keys=sort_keys) == reference(value, sort_keys)


def test_a_lone_surrogate_fails_as_json_fails() -> None:
    with pytest.raises(UnicodeEncodeError):
        compact_json({"x": "\ud800"})
