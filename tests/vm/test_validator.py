"""Deploy-time validation: each forbidden construct is rejected with its line and a reason."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from consensus.vm import VM, Limits, MemoryStorage, ValidationError, compile_contract
from tests.vm.helpers import deploy


def _reject(body: str) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        compile_contract(textwrap.dedent(body))
    return info.value


# (source, line of the offending construct, words the reason must contain)
FORBIDDEN = [
    ("import os\n", 1, "import"),
    ("from os import path\n", 1, "import"),
    ("def f() -> int:\n    return 1\n\ndef main():\n    x = ().__class__\n", 5, "dunder"),
    ("def main():\n    return len.__self__\n", 2, "dunder"),
    ("def main():\n    __builtins__ = 1\n", 2, "dunder"),
    ("def main():\n    x = 1\n    return 1.5\n", 3, "float"),
    ("def main():\n    return 1j\n", 2, "float"),
    ("def main():\n    exec('1')\n", 2, "not available"),
    ("def main():\n    return eval('1')\n", 2, "not available"),
    ("def main():\n    open('/etc/passwd')\n", 2, "not available"),
    ("def main():\n    compile('1', 'x', 'exec')\n", 2, "not available"),
    ("def main():\n    return getattr(1, 'real')\n", 2, "not available"),
    ("def main():\n    return type(1)\n", 2, "not available"),
    ("def main():\n    print(1)\n", 2, "not available"),
    ("class A:\n    pass\n", 1, "class"),
    ("def main():\n    f = lambda: 1\n", 2, "lambda"),
    ("def main():\n    global X\n", 2, "global"),
    ("def main():\n    x = 1\n    def g():\n        nonlocal x\n", 3, "nested"),
    ("def main():\n    with x:\n        pass\n", 2, "with"),
    ("def main():\n    try:\n        pass\n    except Exception:\n        pass\n", 2, "try"),
    ("def main():\n    raise ValueError('x')\n", 2, "revert"),
    ("def main():\n    return {1, 2}\n", 2, "sets"),
    ("def main():\n    return set()\n", 2, "sets"),
    ("def main():\n    return 1.0.hex()\n", 2, "float"),
    ("def main():\n    return 3 / 2\n", 2, "'//'"),
    ("def main():\n    if (y := 3):\n        pass\n", 2, "walrus"),
    ("def main(xs: list):\n    return len(*xs)\n", 2, "star"),
    ("def main():\n    return sorted([1], reverse=True)\n", 2, "keyword"),
    ("def main():\n    yield 1\n", 2, "generators"),
    ("async def main():\n    pass\n", 1, "async"),
    ("def main():\n    return undefined_name\n", 2, "not defined"),
    ("def main():\n    f = len\n", 2, "not values"),
    ("def main():\n    c = ctx\n", 2, "ctx"),
    ("def main():\n    return ctx.storage\n", 2, "ctx has no field"),
    ("def main():\n    return ctx.secret()\n", 2, "ctx has no method"),
    ("def main():\n    return 'a'.format(1)\n", 2, "method 'format'"),
    ("def main():\n    x = [1]\n    return x.sort\n", 3, "attribute access"),
    ("def main():\n    x = 1\n    return x is 1\n", 3, "'is'"),
    ("def main(x):\n    return x\n", 1, "needs a type"),
    ("def main(x: float):\n    return 1\n", 1, "annotation"),
    ("X = 1\ndef main():\n    X = 2\n", 3, "cannot assign"),
    ("def main():\n    len = 2\n", 2, "reserved"),
    ("def main():\n    return 1" + "0" * 100 + "\n", 2, "wider"),
    ("def main():\n    x = 1\n    return f'{x!r}'\n", 3, "conversions"),
    ("def main():\n    for i in range(2):\n        pass\n    else:\n        pass\n", 2, "for/else"),
    ("def main():\n    return {**{}}\n", 2, "unpacking"),
    ("def main():\n    x = 1\n    del x\n", 3, "del"),
    ("def main():\n    return [1][0]()\n", 2, "only named"),
    ("@dec\ndef main():\n    pass\n", 2, "decorators"),
    ("def main(x: int = 1):\n    pass\n", 1, "default"),
    ("def main(*args):\n    pass\n", 1, "positional"),
    ("x = 1\nx += 1\n", 2, "module level"),
    ("print(1)\n", 1, "module level"),
    ("X = len([1])\n", 1, "literals"),
    ("def main():\n    return init()\n\ndef init():\n    pass\n", 2, "deploy"),
    ("def f(a: int):\n    return a\n\ndef main():\n    return f(1, 2)\n", 5, "takes 1"),
    ("def main():\n    match 1:\n        case 1:\n            pass\n", 2, "match"),
    ("def main(:\n", 1, "syntax"),
    ("def f():\n    pass\n\ndef f():\n    pass\n", 4, "twice"),
    ("X = " + "[" * 30 + "]" * 30 + "\n", 1, "nesting"),
    ("X = 1" + "0" * 100 + "\n", 1, "wider"),
    ("def main():\n    return ...\n", 2, "literal Ellipsis"),
    ("def main():\n    return __name__\n", 2, "dunder"),
    ("def main():\n    f = getattr\n", 2, "not available"),
    ("def main():\n    x = [0]\n    return [1 for x[0] in range(2)]\n", 3, "comprehension targets"),
    ("def main(xs: list):\n    return [x async for x in xs]\n", 2, "async"),
    ("def main():\n    while False:\n        pass\n    else:\n        pass\n", 2, "while/else"),
    ("def main():\n    x = [1]\n    x.y = 2\n", 3, "can only assign"),
    ("def main():\n    x = [1]\n    x.y += 2\n", 3, "augmented"),
    ("def main():\n    x: int\n", 2, "annotated assignment"),
    ("def __init__():\n    pass\n", 1, "dunder"),
    ("def len():\n    pass\n", 1, "reserved"),
    ("X, Y = 1, 2\n", 1, "bind one name"),
    ("ctx = 1\n", 1, "reserved"),
    ("X = 1\nX = 2\n", 2, "twice"),
]


@pytest.mark.parametrize(("source", "line", "reason"), FORBIDDEN)
def test_forbidden_construct_is_rejected_with_line_and_reason(source: str, line: int, reason: str) -> None:
    error = _reject(source)
    assert error.line == line
    assert reason in error.reason
    assert str(error).startswith(f"line {line}:")


def test_deploy_of_forbidden_source_gives_invalid_receipt_and_leaves_no_state() -> None:
    state = MemoryStorage()
    receipt = deploy(VM(), state, "def main():\n    return ().__class__\n")
    assert receipt.status == "invalid"
    assert receipt.error is not None and receipt.error.startswith("line 2:")
    assert receipt.gas_used > 0  # the sender still pays for the bytes it sent
    assert state.items == {}


def test_nesting_deeper_than_the_limit_is_rejected() -> None:
    deep = "def main():\n    return " + "(" * 30 + "1" + ")" * 30 + "\n"  # parentheses do not nest the AST
    compile_contract(deep)
    nested = "def main():\n    return " + "-" * 40 + "1\n"
    error = _reject(nested)
    assert error.line == 2 and "nesting" in error.reason


def test_oversized_source_is_rejected() -> None:
    limits = Limits(max_source_bytes=100)
    with pytest.raises(ValidationError) as info:
        compile_contract("X = '" + "a" * 200 + "'\n", limits)
    assert info.value.line == 0 and "limit" in info.value.reason


def test_local_may_reuse_a_host_builtin_name_without_reaching_it() -> None:
    program = compile_contract("def main(id: int) -> int:\n    return id + 1\n")
    assert program.functions["main"].params == ("id",)
    error = _reject("def main(id: int):\n    return id(1)\n")
    assert "not callable" in error.reason


def test_valid_program_exposes_abi_of_public_functions_only() -> None:
    program = compile_contract(
        textwrap.dedent(
            '''
            """doc"""
            LIMIT = 3
            TABLE = {"a": [1, 2]}

            def init(admins: list):
                pass

            def get(key: str, n: int, b: bytes, flag: bool, xs: list, d: dict) -> int:
                return _private(n)

            def _private(n):
                return n
            '''
        )
    )
    abi: Any = program.abi()
    assert [f["name"] for f in abi["functions"]] == ["get"]
    params = abi["functions"][0]["params"]
    assert [p["type"] for p in params] == ["str", "int", "bytes", "bool", "list", "dict"]
    assert abi["init"] == {"name": "init", "params": [{"name": "admins", "type": "list"}]}
    assert program.constants["LIMIT"] == 3
    assert program.mutable_constants == frozenset({"TABLE"})


def test_unparseable_bytes_are_rejected() -> None:
    with pytest.raises(ValidationError):
        compile_contract("def main():\n    return 1\n\x00")
