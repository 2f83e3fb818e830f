"""Every builtin and method, fed arbitrary contract values, either returns a contract value or raises the VM's
own `ExecutionError` — never a host exception (which would crash a node or end a call in a host-defined way)."""

from __future__ import annotations

import ast
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.vm import ExecutionError
from consensus.vm.builtins import BUILTINS
from consensus.vm.gas import Meter
from consensus.vm.methods import METHODS
from consensus.vm.operators import binary, compare, unary
from consensus.vm.validator import _ALLOWED
from consensus.vm.values import weigh

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.sampled_from([0, 1, -1, 2, 16, 255, 2**255])
    | st.text(max_size=6)
    | st.binary(max_size=6)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=3) | st.integers(-3, 3), inner, max_size=3)
    ),
    max_leaves=8,
)
ARGS = st.lists(VALUES, max_size=3)
TARGETS: dict[type, st.SearchStrategy[Any]] = {
    list: st.lists(VALUES, max_size=4),
    tuple: st.lists(VALUES, max_size=3).map(tuple),
    dict: st.dictionaries(st.text(max_size=3), VALUES, max_size=3),
    str: st.text(max_size=8),
    bytes: st.binary(max_size=8),
}


def _outcome(run: Any) -> None:
    try:
        result = run()
    except ExecutionError:
        return
    weigh(result, 10**6)  # a contract value, nothing else


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(BUILTINS)), args=ARGS)
def test_builtins_fail_cleanly(name: str, args: list[Any]) -> None:
    _outcome(lambda: BUILTINS[name](Meter(10**6), args))


@settings(max_examples=300, deadline=None)
@given(data=st.data(), key=st.sampled_from(sorted(METHODS, key=lambda k: (k[0].__name__, k[1]))), args=ARGS)
def test_methods_fail_cleanly(data: st.DataObject, key: tuple[type, str], args: list[Any]) -> None:
    target = data.draw(TARGETS[key[0]])
    _outcome(lambda: METHODS[key](Meter(10**6), target, args))


OPERATORS = sorted(_ALLOWED, key=lambda t: t.__name__)  # the validator's accepted node types, operators among them


@settings(max_examples=300, deadline=None)
@given(op=st.sampled_from([t for t in OPERATORS if issubclass(t, ast.operator)]), a=VALUES, b=VALUES)
def test_binary_operators_fail_cleanly(op: type, a: Any, b: Any) -> None:
    _outcome(lambda: binary(Meter(10**6), op(), a, b))


@settings(max_examples=300, deadline=None)
@given(op=st.sampled_from([t for t in OPERATORS if issubclass(t, ast.cmpop)]), a=VALUES, b=VALUES)
def test_comparisons_fail_cleanly(op: type, a: Any, b: Any) -> None:
    _outcome(lambda: compare(Meter(10**6), op(), a, b))


@settings(max_examples=100, deadline=None)
@given(op=st.sampled_from([t for t in OPERATORS if issubclass(t, ast.unaryop)]), a=VALUES)
def test_unary_operators_fail_cleanly(op: type, a: Any) -> None:
    _outcome(lambda: unary(Meter(10**6), op(), a))
