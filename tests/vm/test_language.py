"""Every construct and builtin of the contract language, evaluated by the VM (never by the host)."""

from __future__ import annotations

import sys

import pytest

from primitives import codec
from tests.vm.helpers import failure, value


def _main(body: str, params: str = "") -> str:
    lines = "\n".join("    " + line for line in body.strip("\n").splitlines())
    return f"def main({params}):\n{lines}\n"


CONSTRUCTS: list[tuple[str, codec.Value]] = [
    ("return 7 + 3 * 2 - 1", 12),
    ("return [7 // 2, -7 // 2, 7 % 3, -7 % 3, 2 ** 10]", [3, -4, 1, 2, 1024]),
    ("return [6 & 3, 6 | 3, 6 ^ 3, 1 << 4, 256 >> 3, ~5, -(-4), +4]", [2, 7, 5, 16, 32, -6, 4, 4]),
    ("return [1 < 2, 2 <= 2, 3 > 4, 4 >= 5, 1 == 1, 1 != 1]", [True, True, False, False, True, False]),
    ("return [1 < 2 < 3, 1 < 3 < 2, 'a' < 'b', b'a' < b'b', [1, 2] < [1, 3]]", [True, False, True, True, True]),
    ("return [2 in [1, 2], 'b' in 'abc', 'k' in {'k': 1}, 5 not in (1, 2), b'x' in b'yxz']", [True] * 5),
    ("x = None\nreturn [x is None, x is not None, True is True]", [True, False, True]),
    ("return [0 or 5, 3 and 4, 0 and 9, '' or 'd', not [], not 1]", [5, 4, 0, "d", True, False]),
    ("x = 3\nif x > 5:\n    return 'big'\nelif x > 2:\n    return 'mid'\nelse:\n    return 'small'", "mid"),
    ("return 'y' if 1 > 0 else 'n'", "y"),
    (
        "i = 0\nt = 0\nwhile True:\n    i += 1\n    if i % 2 == 0:\n        continue\n    if i > 9:\n        break\n"
        "    t += i\nreturn t",
        25,
    ),
    (
        "t = []\nfor k in {'b': 1, 'a': 2}:\n    t.append(k)\nfor c in 'xy':\n    t.append(c)\nfor b in b'\\x01':\n"
        "    t.append(b)\nfor v in (5,):\n    t.append(v)\nreturn t",
        ["b", "a", "x", "y", 1, 5],
    ),
    ("a, (b, c) = 1, [2, 3]\nx = y = 4\nreturn [a, b, c, x, y]", [1, 2, 3, 4, 4]),
    (
        "xs = [1, 2, 3, 4]\nreturn [xs[0], xs[-1], xs[1:3], xs[::-1], xs[:10], 'hello'[1:3], b'abc'[1]]",
        [1, 4, [2, 3], [4, 3, 2, 1], [1, 2, 3, 4], "el", 98],
    ),
    ("d = {'a': [1]}\nd['a'][0] += 5\nd['b'] = 2\nd['b'] *= 3\nn = 1\nn <<= 3\nreturn [d, n]", [{"a": [6], "b": 6}, 8]),
    ("xs = [1, 2, 3]\ndel xs[0]\nd = {'a': 1, 'b': 2}\ndel d['a']\nreturn [xs, d]", [[2, 3], {"b": 2}]),
    ("return [x * x for x in range(6) if x % 2 == 1]", [1, 9, 25]),
    ("return [(a, b) for a in range(2) for b in 'xy']", [[0, "x"], [0, "y"], [1, "x"], [1, "y"]]),
    ("return {str(k): k * 2 for k in range(3)}", {"0": 0, "1": 2, "2": 4}),
    ("return sum(x for x in range(5))", 10),
    ("x = 5\nv = [x for x in range(3)]\nreturn x", 5),
    ("for i in range(10):\n    if i == 3:\n        return i", 3),
    ("i = 0\nwhile True:\n    i += 1\n    if i == 4:\n        return i", 4),
    (
        "t = 0\nfor i in range(10):\n    if i == 5:\n        break\n"
        "    if i % 2:\n        continue\n    t += i\nreturn t",
        6,
    ),
    ("n = 7\ns = 'ok'\nreturn f'n={n} s={s} l={[1]}'", "n=7 s=ok l=[1]"),
    ("x: int = 3\nreturn x", 3),
    ("'''docstring'''\npass\nreturn None", None),
    ("return ('a', 1) + ('b',)", ["a", 1, "b"]),
    (
        "return ['ab' * 2, [0] * 3, 2 * b'x', 'a' + 'b', b'a' + b'b', [1] + [2]]",
        ["abab", [0, 0, 0], b"xx", "ab", b"ab", [1, 2]],
    ),
    ("return [True + 1, True & False, 3 * False]", [2, False, 0]),
    ("return _fact(10)", 3628800),
    ("xs = LIST\nxs.append(9)\nreturn [LIST, TUPLE, NEG]", [[1, 2], [1, "a"], -5]),
]

PRELUDE = (
    "LIST = [1, 2]\nTUPLE = (1, 'a')\nNEG = -5\n\n"
    "def _fact(n):\n    if n < 2:\n        return 1\n    return n * _fact(n - 1)\n\n"
)


@pytest.mark.parametrize(("body", "expected"), CONSTRUCTS)
def test_construct(body: str, expected: codec.Value) -> None:
    assert value(PRELUDE + _main(body)) == expected


BUILTINS: list[tuple[str, codec.Value]] = [
    ("len('abc') + len(b'ab') + len([1]) + len((1, 2)) + len({'a': 1})", 9),
    ("[range(3), range(1, 4), range(10, 0, -4)]", [[0, 1, 2], [1, 2, 3], [10, 6, 2]]),
    ("[min(3, 1, 2), max([4, 9, 2]), min('b', 'a'), max([[1], [2]])]", [1, 9, "a", [2]]),
    ("[abs(-4), abs(4)]", [4, 4]),
    (
        "[str(12), str(-1), str(True), str(None), str(b'a'), str([1, 'x']), str()]",
        ["12", "-1", "True", "None", "b'a'", "[1, 'x']", ""],
    ),
    ("[int('42'), int('-7'), int('ff', 16), int(True), int()]", [42, -7, 255, 1, 0]),
    ("[bytes([104, 105]), bytes(b'q'), bytes()]", [b"hi", b"q", b""]),
    ("[bool(0), bool('x'), bool([]), bool(None), bool()]", [False, True, False, False, False]),
    ("[list('ab'), list((1, 2)), list({'k': 1}), list()]", [["a", "b"], [1, 2], ["k"], []]),
    ("[tuple([1, 2]), tuple()]", [[1, 2], []]),
    ("[dict({'a': 1}), dict([('b', 2)]), dict()]", [{"a": 1}, {"b": 2}, {}]),
    ("[sorted([3, 1, 2]), sorted('cab'), sorted([[2], [1]])]", [[1, 2, 3], ["a", "b", "c"], [[1], [2]]]),
    ("[reversed([1, 2, 3]), reversed('ab')]", [[3, 2, 1], ["b", "a"]]),
    ("[enumerate('ab'), zip([1, 2], 'xyz')]", [[[0, "a"], [1, "b"]], [[1, "x"], [2, "y"]]]),
    ("[sum([1, 2, 3]), any([0, '', 1]), all([1, 'a']), any([]), all([])]", [6, True, True, False, True]),
    ("[hex(255), fromhex('0aff')]", ["0xff", b"\n\xff"]),
    ("sha256(b'abc').hex()[:16]", "ba7816bf8f01cfea"),
    ("sha256('abc') == sha256(b'abc')", True),
    ("len(address_of(b'k' * 32))", 20),
    (
        "[type_name(1), type_name(True), type_name(None), type_name('s'), type_name(b''), type_name([]), "
        "type_name(()), type_name({})]",
        ["int", "bool", "None", "str", "bytes", "list", "tuple", "dict"],
    ),
]


@pytest.mark.parametrize(("expr", "expected"), BUILTINS)
def test_builtin(expr: str, expected: codec.Value) -> None:
    assert value(_main("return " + expr)) == expected


METHODS: list[tuple[str, codec.Value]] = [
    ("xs = [3]\nxs.append(1)\nxs.extend([2, 5])\nxs.insert(0, 9)\nxs.remove(5)\nreturn xs", [9, 3, 1, 2]),
    ("xs = [1, 2, 3]\na = xs.pop()\nb = xs.pop(0)\nreturn [a, b, xs]", [3, 1, [2]]),
    ("xs = [1, 2, 2]\nreturn [xs.index(2), xs.count(2), (1, 1).count(1), (4, 5).index(5)]", [1, 2, 2, 1]),
    ("xs = [2, 1, 3]\nxs.sort()\nys = xs.copy()\nys.reverse()\nreturn [xs, ys]", [[1, 2, 3], [3, 2, 1]]),
    (
        "d = {'a': 1}\nreturn [d.get('a'), d.get('z'), d.get('z', 0), d.keys(), d.values(), d.items()]",
        [1, None, 0, ["a"], [1], [["a", 1]]],
    ),
    (
        "d = {'a': 1, 'b': 2}\nx = d.pop('a')\ny = d.pop('q', 7)\nz = d.setdefault('c', 3)\nd.update({'e': 5})\n"
        "e = d.copy()\ne['f'] = 0\nreturn [x, y, z, d]",
        [1, 7, 3, {"b": 2, "c": 3, "e": 5}],
    ),
    (
        "s = ' Hi There '\nreturn [s.strip(), s.lower(), s.upper(), s.strip().split(' '), 'a,b'.split(',', 1), "
        "'-'.join(['a', 'b']), 'aXa'.replace('a', 'bb'), 'abc'.find('c'), 'ab'.startswith('a'), "
        "'ab'.endswith('a'), 'é'.encode(), '123'.isdigit(), 'x--'.strip('-'), 'aa'.count('a')]",
        [
            " Hi There ".strip(),
            " hi there ",
            " HI THERE ",
            ["Hi", "There"],
            ["a", "b"],
            "a-b",
            "bbXbb",
            2,
            True,
            False,
            "é".encode(),
            True,
            "x",
            2,
        ],
    ),
    (
        "b = b'\\x01ab'\nreturn [b.hex(), b[1:].decode(), b.startswith(b'\\x01'), b.endswith(b'c'), b.find(b'b'), "
        "b.count(b'a')]",
        ["016162", "ab", True, False, 2, 1],
    ),
]


@pytest.mark.parametrize(("body", "expected"), METHODS)
def test_method(body: str, expected: codec.Value) -> None:
    assert value(_main(body)) == expected


def test_text_methods_are_ascii_only_so_every_python_version_agrees() -> None:
    body = r"return ['Éa'.upper(), 'ÀB'.lower(), '\u2003x\t'.strip(), 'a\u2003b  c\n'.split()]"
    assert value(_main(body)) == ["ÉA", "Àb", "\u2003x", ["a\u2003b", "c"]]


def test_constants_cannot_be_changed_by_a_call() -> None:
    source = "TABLE = {'a': [1]}\n\ndef main():\n    t = TABLE\n    t['a'].append(2)\n    return TABLE\n"
    assert value(source) == {"a": [1]}


def test_arguments_arrive_typed() -> None:
    source = "def main(n: int, s: str, b: bytes, f: bool, xs: list, d: dict):\n    return [n, s, b, f, xs, d]\n"
    args: list[codec.Value] = [1, "s", b"b", True, [1, [2]], {"k": None}]
    assert value(source, args=args) == args


RUNTIME_FAULTS: list[tuple[str, str, str]] = [
    ("return 1 // 0", "failed", "division"),
    ("return 1 % 0", "failed", "division"),
    ("return [1][5]", "failed", "out of range"),
    ("return {'a': 1}['b']", "failed", "key not found"),
    ("return 1 + 'a'", "failed", "unsupported operand"),
    ("return 'a' < 1", "failed", "unsupported"),
    ("return [1, 'a'] < [1, 2]", "failed", "unsupported"),
    ("return sorted([1, 'a'])", "failed", "comparable"),
    ("return 2 ** -1", "failed", "negative exponent"),
    ("return 1 << -1", "failed", "negative shift"),
    ("x = (1, 2)\nx[0] = 5", "failed", "item assignment"),
    ("return {[1]: 2}", "failed", "dict keys"),
    ("a, b = [1, 2, 3]", "failed", "unpack"),
    ("for x in 5:\n    pass", "failed", "not iterable"),
    ("return int('12x')", "failed", "not a number"),
    ("return b'\\xff'.decode()", "failed", "UTF-8"),
    ("return (1).append(2)", "failed", "no method"),
    ("return fromhex('zz')", "failed", "not hex"),
    ("return int('٣')", "failed", "not a number"),
    ("return 'a b'.split(None, 1)", "failed", "explicit separator"),
    ("return len(5)", "failed", "expects"),
    ("return range(1, 2, 0)", "failed", "step"),
    ("x = [1, 2]\nx[0:1] = [5]", "failed", "slice assignment"),
    ("x = [1, 2]\nx[0:1] += [5]", "failed", "slice assignment"),
    ("x = [1, 2]\ndel x[0:1]", "failed", "slice deletion"),
    ("x = {'a': 1}\ndel x['b']", "failed", "key not found"),
    ("x = 'ab'\ndel x[0]", "failed", "item deletion"),
    ("return [1]['a']", "failed", "indices must be int"),
    ("return (5)[0]", "failed", "not subscriptable"),
    ("return [1, 2][0:'a']", "failed", "slice bounds"),
    ("return [1, 2][::0]", "failed", "step must not be zero"),
    ("return {'a': 1}[0:1]", "failed", "cannot be sliced"),
    ("y = 1\nif y > 5:\n    z = 1\nreturn z", "failed", "not defined"),
    ("revert('nope')", "reverted", "nope"),
    ("assert 1 == 2, 'maths'", "reverted", "maths"),
    ("assert False", "reverted", "assertion failed"),
    ("return 2 ** 300", "failed", "wider"),
    ("x = 1 << 255\nreturn x * x", "failed", "wider"),
    ("return 'ab' * 100000", "failed", "string longer"),
    ("return [0] * 100000", "failed", "more than"),
    ("return range(100000)", "failed", "range()"),
    ("x = 'a' * 60000\nreturn x + x", "failed", "string longer"),
    ("return int('1' * 200)", "failed", "longer than"),
    ("x = [0] * 1000\ny = [x] * 1000\nreturn y == [x] * 1000", "failed", "too large"),
    ("x = [0] * 1000\ny = [x] * 1000\nreturn str(y)", "failed", "too large"),
    ("x = []\nx.append(x)\nreturn str(x)", "failed", "nested deeper"),
    ("return _deep(0)", "failed", "call depth"),
]


@pytest.mark.parametrize(("body", "status", "words"), RUNTIME_FAULTS)
def test_runtime_fault_fails_the_call_with_line_and_reason(body: str, status: str, words: str) -> None:
    source = "def _deep(n):\n    return _deep(n + 1)\n\n" + _main(body)
    receipt = failure(source)
    assert receipt.status == status, receipt.error
    assert receipt.error is not None and words in receipt.error
    assert receipt.error.startswith("line ")
    assert receipt.events == ()


def test_fault_reports_the_line_it_happened_on() -> None:
    receipt = failure("def main():\n    x = 1\n    y = 2\n    return x // (y - 2)\n")
    assert receipt.error == "line 4: integer division or modulo by zero"


def test_memory_bound_stops_a_call_that_allocates_too_much() -> None:
    body = "keep = []\nfor i in range(2000):\n    keep.append('x' * 60000)\nreturn len(keep)"
    receipt = failure(_main(body), gas=100_000_000)
    assert receipt.status == "failed"
    assert receipt.error is not None and "memory limit" in receipt.error


def test_deeply_nested_values_fail_the_same_way_everywhere() -> None:
    # repr/== of a 10 000-deep list would hit the host's C recursion limit at a stack-dependent point.
    body = "x = []\nfor i in range(10000):\n    x = [x]\nreturn str(x)"
    receipt = failure(_main(body), gas=100_000_000)
    assert receipt.error is not None and "nested deeper" in receipt.error


def test_worst_case_nesting_and_call_depth_stay_inside_the_host_stack() -> None:
    # Statement and expression nesting near the validator's limit, recursing until the call-depth bound.
    ifs = "".join("    " * (level + 1) + "if n >= 0:\n" for level in range(8))
    expr = "(" * 9 + "1" + " + 1)" * 9
    source = f"def _f(n):\n{ifs}{'    ' * 9}return _f(n + 1) + {expr}\n\n" + _main("return _f(0)")

    def nest(levels: int) -> None:  # run from a deeper host stack, as a node's event loop would
        if levels:
            nest(levels - 1)
            return
        receipt = failure(source)
        assert receipt.status == "failed"
        assert receipt.error is not None and "call depth" in receipt.error, receipt.error

    nest(min(200, sys.getrecursionlimit() // 4))


def test_evaluation_order_follows_python() -> None:
    log = "def _log(tag, v):\n    ctx.set('log', ctx.get('log', []) + [tag])\n    return v\n\n"
    body = (
        "_log('owner', [1]).append(_log('arg', 2))\n"
        "d = {_log('k1', 'a'): _log('v1', 1)}\n"
        "x = _log('left', 1) + _log('right', 2)\n"
        "return ctx.get('log')"
    )
    assert value(log + _main(body)) == ["owner", "arg", "k1", "v1", "left", "right"]
