"""Property: random valid programs give identical receipts, state, gas and events on independent VMs, and
only ever produce contract values; random escape attempts never get past the validator."""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.vm import VM, MemoryStorage, ValidationError, compile_contract
from consensus.vm.values import weigh
from tests.vm.helpers import BLOCK, SENDER, deploy

INT_LEAVES = st.sampled_from(["a", "x", "n", "0", "1", "7", "-3", "len(b)", "len(c)", "ctx.height"])
STR_LEAVES = st.sampled_from(["b", "s", "'k'", "''", "str(a)", "f'{a}:{b}'"])
LIST_LEAVES = st.sampled_from(["c", "xs", "[]", "[a, n]", "sorted(c)", "list(range(3))"])


@st.composite
def int_expr(draw: st.DrawFn, depth: int = 0) -> str:
    if depth > 2 or draw(st.booleans()):
        return draw(INT_LEAVES)
    op = draw(st.sampled_from(["+", "-", "*", "//", "%", "**", "<<", "&", "|", "^"]))
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return f"({draw(int_expr(depth + 1))} {op} {draw(int_expr(depth + 1))})"
    if kind == 1:
        return f"min({draw(int_expr(depth + 1))}, {draw(int_expr(depth + 1))})"
    if kind == 2:
        return f"abs({draw(int_expr(depth + 1))})"
    return f"({draw(int_expr(depth + 1))} if {draw(bool_expr(depth + 1))} else {draw(int_expr(depth + 1))})"


@st.composite
def str_expr(draw: st.DrawFn, depth: int = 0) -> str:
    if depth > 2 or draw(st.booleans()):
        return draw(STR_LEAVES)
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return f"({draw(str_expr(depth + 1))} + {draw(str_expr(depth + 1))})"
    if kind == 1:
        return f"{draw(str_expr(depth + 1))}[{draw(int_expr(depth + 1))}:]"
    if kind == 2:
        return f"({draw(str_expr(depth + 1))} * ({draw(int_expr(depth + 1))} % 4))"
    return f"{draw(str_expr(depth + 1))}.upper()"


@st.composite
def list_expr(draw: st.DrawFn, depth: int = 0) -> str:
    if depth > 2 or draw(st.booleans()):
        return draw(LIST_LEAVES)
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return f"({draw(list_expr(depth + 1))} + {draw(list_expr(depth + 1))})"
    if kind == 1:
        return f"[v * 2 for v in {draw(list_expr(depth + 1))} if v != {draw(int_expr(depth + 1))}]"
    return f"{draw(list_expr(depth + 1))}[{draw(int_expr(depth + 1))}:{draw(int_expr(depth + 1))}]"


@st.composite
def bool_expr(draw: st.DrawFn, depth: int = 0) -> str:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        cmp = draw(st.sampled_from(["<", "<=", "==", "!=", ">"]))
        return f"{draw(int_expr(depth + 1))} {cmp} {draw(int_expr(depth + 1))}"
    if kind == 1:
        return f"{draw(int_expr(depth + 1))} in {draw(list_expr(depth + 1))}"
    if kind == 2:
        return f"{draw(str_expr(depth + 1))} == {draw(str_expr(depth + 1))}"
    return f"not ({draw(int_expr(depth + 1))} > 2 and b != s)"


@st.composite
def statements(draw: st.DrawFn, indent: int = 1, depth: int = 0) -> list[str]:
    pad = "    " * indent
    lines: list[str] = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.integers(0, 8 if depth < 2 else 5))
        if kind == 0:
            lines.append(f"{pad}a = {draw(int_expr())}")
        elif kind == 1:
            lines.append(f"{pad}b = {draw(str_expr())}")
        elif kind == 2:
            lines.append(f"{pad}c = {draw(list_expr())}")
        elif kind == 3:
            lines.append(f"{pad}ctx.set('k' + str(n % 3), {draw(st.sampled_from(['a', 'b', 'c', '[a, b]']))})")
        elif kind == 4:
            lines.append(f"{pad}ctx.emit('e', {{'a': a, 'b': b, 'got': ctx.get('k1', 0)}})")
        elif kind == 5:
            lines.append(f"{pad}c.append({draw(int_expr())})")
        elif kind == 6:
            lines.append(f"{pad}if {draw(bool_expr())}:")
            lines += draw(statements(indent + 1, depth + 1))
            lines.append(f"{pad}else:")
            lines += draw(statements(indent + 1, depth + 1))
        elif kind == 7:
            lines.append(f"{pad}for i in range({draw(st.integers(0, 5))}):")
            lines.append(f"{pad}    n += 1")
            lines += draw(statements(indent + 1, depth + 1))
        else:
            lines.append(f"{pad}while n < {draw(st.integers(0, 8))}:")
            lines.append(f"{pad}    n += 1")
            lines += draw(statements(indent + 1, depth + 1))
    return lines


@st.composite
def programs(draw: st.DrawFn) -> str:
    body = draw(statements())
    head = "def main(x: int, s: str, xs: list) -> list:\n    a = x\n    b = s\n    c = xs\n    n = 0\n"
    return head + "\n".join(body) + "\n    return [a, b, c, n, ctx.get('k0')]\n"


# Host functions a contract must never reach, even indirectly through the VM's own code while it runs.
HOST_ESCAPES = frozenset(
    {"eval", "exec", "compile", "open", "__import__", "getattr", "setattr", "delattr", "globals", "locals", "vars",
     "breakpoint", "input", "system", "popen", "dir", "__build_class__"}
)  # fmt: skip


def _execute(source: str, args: list[Any], gas: int) -> tuple[Any, dict[bytes, bytes]]:
    vm, state = VM(), MemoryStorage()
    deployed = deploy(vm, state, source)
    assert deployed.ok, deployed.error
    assert deployed.address is not None
    called: set[str] = set()

    def watch(frame: FrameType, event: str, arg: Any) -> None:
        if event == "c_call":
            called.add(getattr(arg, "__name__", ""))

    sys.setprofile(watch)
    try:
        receipt = vm.call(state, SENDER, deployed.address, "main", args, block=BLOCK, gas_limit=gas)
    finally:
        sys.setprofile(None)
    assert not called & HOST_ESCAPES, called & HOST_ESCAPES
    return receipt, state.items


@settings(max_examples=60, deadline=None)
@given(
    source=programs(),
    x=st.integers(-50, 50),
    s=st.text(alphabet="abé", max_size=4),
    xs=st.lists(st.integers(-5, 5), max_size=4),
    gas=st.sampled_from([3_000, 50_000]),
)
def test_independent_vms_agree_on_everything(source: str, x: int, s: str, xs: list[int], gas: int) -> None:
    first, first_state = _execute(source, [x, s, xs], gas)
    second, second_state = _execute(source, [x, s, xs], gas)
    assert first == second  # status, gas used, error, return value, events
    assert first.to_value() == second.to_value()
    assert first_state == second_state
    assert first.gas_used <= gas
    # Only contract values come out: weigh() raises on anything else (a host object, a function, a type…).
    weigh(first.return_value, 10**6)
    for event in first.events:
        weigh(event.data, 10**6)
    if not first.ok:
        assert first.events == ()


ESCAPES = [
    "().__class__.__bases__",
    "getattr(a, 'real')",
    "type(a)",
    "eval('1')",
    "open('x')",
    "ctx.__dict__",
    "__import__('os')",
    "b.__len__()",
    "[].__class__",
    "a.real",
    "(lambda: 1)()",
    "1.5",
    "globals()",
    "vars()",
    "ctx",
    "len",
]


@settings(max_examples=40, deadline=None)
@given(source=programs(), escape=st.sampled_from(ESCAPES), where=st.integers(0, 100))
def test_escape_attempts_inside_valid_programs_are_rejected(source: str, escape: str, where: int) -> None:
    lines = source.splitlines()
    # A line inside main's body, after the set-up lines, that is not an `else:` (inserting there breaks syntax).
    candidates = [i for i in range(5, len(lines)) if not lines[i].strip().startswith("else")]
    position = candidates[where % len(candidates)]
    indent = lines[position][: len(lines[position]) - len(lines[position].lstrip())]
    lines.insert(position, f"{indent}a = {escape}")
    try:
        compile_contract("\n".join(lines) + "\n")
    except ValidationError as error:
        assert error.line == position + 1
    else:
        raise AssertionError(f"escape {escape!r} was accepted")
