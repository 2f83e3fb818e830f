"""JSON and command-line forms of contract values and arguments."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.contracts import ehr_source
from consensus.vm import ArgumentError, compile_contract
from consensus.vm.jsonvalues import from_json, parse_args, to_json
from primitives import codec

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64 - 1) | st.text(max_size=8) | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=80)
@given(VALUES)
def test_json_round_trip_is_lossless(value: codec.Value) -> None:
    assert from_json(json.loads(json.dumps(to_json(value)))) == value


def test_bytes_use_the_dag_json_form() -> None:
    assert to_json(b"\x00\xff") == {"/": {"bytes": "AP8"}}
    assert from_json({"/": {"bytes": "AP8"}}) == b"\x00\xff"
    assert from_json({"/": None, "x": {"/": "y"}}) == {"/": None, "x": {"/": "y"}}  # other "/" maps are maps


@pytest.mark.parametrize(
    "bad", [1.5, [2.5], {"/": {"bytes": "!!"}}, {"/": {"bytes": 3}}, {"k": {"/": {"bytes": "A"}}}, {1, 2}]
)
def test_bad_json_values_are_argument_errors(bad: Any) -> None:
    with pytest.raises(ArgumentError):
        from_json(bad)


def test_cli_arguments_follow_the_abi() -> None:
    abi: Any = compile_contract(ehr_source()).abi()
    pk = "ab" * 32
    assert parse_args(abi, "set_policy", ["0x" + pk, pk, "*", "0"]) == [bytes.fromhex(pk)] * 2 + ["*", 0]
    source = "def f(flag: bool, xs: list, d: dict) -> int:\n    return 1\n"
    small: Any = compile_contract(source).abi()
    assert parse_args(small, "f", ["true", "[1, 2]", '{"k": {"/": {"bytes": "AP8"}}}']) == [
        True,
        [1, 2],
        {"k": b"\x00\xff"},
    ]
    with pytest.raises(ArgumentError, match="takes 4"):
        parse_args(abi, "set_policy", [pk])
    with pytest.raises(ArgumentError, match="not a valid int"):
        parse_args(abi, "set_policy", [pk, pk, "*", "soon"])
    with pytest.raises(ArgumentError, match="no public function"):
        parse_args(abi, "_penalise", [])
    with pytest.raises(ArgumentError, match="JSON array"):
        parse_args(small, "f", ["true", "{}", "{}"])
    with pytest.raises(ArgumentError, match="bool"):
        parse_args(small, "f", ["maybe", "[]", "{}"])
