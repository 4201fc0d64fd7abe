"""engine.integrity.jsonbytes writes exactly RFC 8785 bytes (``canonical_json``, the envelope
and its hash since envelope_version 2) and json.dumps's compact bytes (``compact_json``,
the hash input of older envelopes), whatever the value: every hash in the chain depends
on them."""

from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from engine.integrity.jsonbytes import canonical_json, compact_json, refuse_large_floats


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


# What RFC 8785 can write: integers within +-(2**53 - 1), no NaN or infinities.
jcs_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(jcs_values)
def test_the_canonical_bytes_are_rfc8785_bytes(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@given(jcs_values)
def test_what_envelopes_hold_reads_back_as_the_same_bytes(value: Any) -> None:
    # What a verifier does: parse the bytes with json, write them again.
    try:
        refuse_large_floats(value)
    except rfc8785.FloatDomainError:
        return
    written = canonical_json(value)
    assert canonical_json(json.loads(written)) == written


@pytest.mark.parametrize("value", [2.0**53, [-1e20], {"a": {"b": [9.99e20]}}])
def test_a_float_that_would_read_back_as_a_large_integer_is_refused(value: Any) -> None:
    with pytest.raises(rfc8785.FloatDomainError):
        refuse_large_floats(value)
    with pytest.raises(rfc8785.CanonicalizationError):
        canonical_json(json.loads(canonical_json(value)))


@pytest.mark.parametrize("value", [2.0**53 - 1, -1e21, [1e300], 5e-324])
def test_a_float_written_with_an_exponent_or_below_2_53_is_kept(value: Any) -> None:
    refuse_large_floats(value)
    assert canonical_json(json.loads(canonical_json(value))) == canonical_json(value)


def test_the_canonical_bytes_of_rfc8785s_own_examples() -> None:
    # RFC 8785 section 3.2.2, and 3.2.3 (keys sorted by UTF-16 code units).
    given_text = (
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], '
        '"string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", '
        '"literals": [null, true, false]}'
    )
    assert (
        canonical_json(json.loads(given_text))
        == (
            '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
            '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
        ).encode()
    )
    keys = ["\u20ac", "\r", "\ufb33", "1", "\U0001f600", "\u0080", "\u00f6"]
    written = canonical_json({k: i for i, k in enumerate(keys)})
    in_utf16_order = ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]
    assert list(json.loads(written)) == in_utf16_order


@pytest.mark.parametrize(
    ("value", "old", "canonical"),
    [
        (1.0, b"1.0", b"1"),
        (1e-05, b"1e-05", b"0.00001"),
        (1e20, b"1e+20", b"100000000000000000000"),
        ({"\uffff": 1, "\U0001f600": 2}, '{"\uffff":1,"\U0001f600":2}'.encode(),
         '{"\U0001f600":2,"\uffff":1}'.encode()),
    ],
)  # fmt: skip
def test_where_the_old_hash_input_and_rfc8785_differ(
    value: Any, old: bytes, canonical: bytes
) -> None:
    # Why envelopes are versioned: an SLA share of 0.00001, a float that is whole, or
    # keys beyond the BMP hash differently under the two rules.
    assert compact_json(value, sort_keys=True) == old
    assert canonical_json(value) == canonical


@pytest.mark.parametrize(
    "value",
    [0.75, 0.1 + 0.2, 1e-4, 9999999999999998.0, 5e-324, -0.0, 2.0, 1e21, {"a": [0.5, "x", 1]}],
)
def test_edge_floats_are_written_as_rfc8785_writes_them(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), 2**53, {"x": "\ud800"}, {1: 2}],
)
def test_what_rfc8785_cannot_write_fails_as_rfc8785_fails(value: Any) -> None:
    with pytest.raises(rfc8785.CanonicalizationError):
        canonical_json(value)
