"""Gas calibration: ns of CPU per unit of gas for every class of gas-charged operation, against a tight loop.

    .venv/bin/python -m bench.vm_calibration [--version N] [--gas G] [--repeat R] [--json]
    ehrnet bench gas --calibrate

A contract's gas limit is meant to bound the CPU time a node spends on it (docs/VM.md "Gas and limits"), which
holds only if no operation does much more work per gas than the cheapest code does. Each case below runs one
operation class in a contract loop (at a small and at the worst size the limits allow) until the call's gas runs
out or a limit ends it, and reports the CPU time per gas used as a ratio to a tight `while` loop measured in the
same run, so the ratio does not depend on the machine. Cases that a size limit ends after one step (a deep walk
over `max_weight`, `str()` of a value whose text is too long) run one step per call. The smallest of `repeat`
runs is kept (other load on the machine only ever adds time).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

from consensus.vm import VM, BlockInfo, MemoryStorage
from consensus.vm.versions import LATEST_VERSION, rules_for

DEPLOYER = b"\x07" * 32
BLOCK = BlockInfo(1, 1_000)
DEFAULT_GAS = 200_000


@dataclass(frozen=True)
class Case:
    """One measurement: `setup` builds the operands (statements), `step` is the operation timed in a loop."""

    kind: str  # the operation class (docs/VM.md "Calibration")
    name: str
    size: str  # "small" or "worst"
    setup: str
    step: str
    loop: bool = True  # False: the step ends the call (a limit), so run it once per call


def _cases() -> list[Case]:
    nested = "a = [[0] * 300] * 300\n    b = [[0] * 300] * 300"
    near = "a = [[0] * 300] * 300\n    x = [0] * 299 + [1]"
    big_text = "s = 'ab,' * 21845"
    ints = "xs = [(i * 7919) % 16384 for i in range(16384)]"
    return [
        Case("loop", "while i += 1", "small", "i = 0", "i += 1"),
        Case("compare", "list == list", "small", "a = [1, 2]\n    b = [1, 2]", "r = a == b"),
        Case("compare", "nested == nested", "worst", nested, "r = a == b"),
        Case("compare", "nested < nested", "worst", nested, "r = a < b"),
        Case("compare", "nested over max_weight (fails)", "worst", "a = [[0] * 400] * 400", "r = a == a", False),
        Case("compare", "x in list", "small", "a = [1, 2, 3]", "r = 3 in a"),
        Case("compare", "near-miss in nested", "worst", near, "r = x in a"),
        Case("compare", "nested.count(near-miss)", "worst", near, "r = a.count(x)"),
        Case("compare", "tuple dict key", "worst", "d = {}\n    k = tuple(range(16384))", "r = k in d"),
        Case("str", "str(list)", "small", "a = [1, 2, 3]", "r = str(a)"),
        Case("str", "str(nested) too long (fails)", "worst", "a = [[2 ** 255] * 300] * 300", "r = str(a)", False),
        Case("str", "str(wide ints)", "worst", "a = [2 ** 255] * 800", "r = str(a)"),
        Case("hash", "sha256 32 B", "small", "s = b'x' * 32", "r = sha256(s)"),
        Case("hash", "sha256 64 KiB", "worst", "s = b'x' * 65536", "r = sha256(s)"),
        Case("hash", "fromhex 64 KiB", "worst", "s = '00' * 32768", "r = fromhex(s)"),
        Case("sort", "sorted 3 ints", "small", "xs = [3, 1, 2]", "r = sorted(xs)"),
        Case("sort", "sorted 16k ints", "worst", ints, "r = sorted(xs)"),
        Case(
            "sort", "sorted near-equal lists", "worst", "xs = [[0] * 40 + [i] for i in range(4000)]", "r = sorted(xs)"
        ),
        Case("copy", "list(16k)", "worst", "a = [0] * 16384", "r = list(a)"),
        Case("copy", "slice 16k", "worst", "a = [0] * 16384", "r = a[:]"),
        Case("copy", "dict(8k)", "worst", "d = {i: i for i in range(8000)}", "r = dict(d)"),
        Case("items", "dict(8k pairs)", "worst", "p = [(i, i) for i in range(8000)]", "r = dict(p)"),
        Case("items", "bytes(16k ints)", "worst", "a = [7] * 16384", "r = bytes(a)"),
        Case("repeat", "[0] * 16k", "worst", "n = 16384", "r = [0] * n"),
        Case("repeat", "'x' * 64k", "worst", "n = 65536", "r = 'x' * n"),
        Case("concat", "list + list 8k", "worst", "a = [0] * 8192", "r = a + a"),
        Case("concat", "str + str 32k", "worst", "s = 'x' * 32768", "r = s + s"),
        Case("text", "replace short", "small", "s = 'abc'", "r = s.replace('a', 'b')"),
        Case("text", "replace 64k", "worst", big_text, "r = s.replace('a', 'c')"),
        Case("items", "split 64k", "worst", big_text, "r = s.split(',')"),
        Case("items", "join 16k", "worst", "p = ['abcd'] * 16384", "r = ','.join(p)"),
        Case("text", "find miss 64k", "worst", big_text, "r = s.find('abc')"),
        Case("text", "in 64k", "worst", big_text, "r = 'zz' in s"),
        Case("text", "strip / isdigit 64k", "worst", "s = '1' * 65536", "r = s.isdigit()"),
        Case("text", "encode 64k", "worst", "s = 'x' * 65536", "r = s.encode()"),
        Case("translate", "upper 64k", "worst", "s = 'a' * 65536", "r = s.upper()"),
        Case("translate", "split() 64k", "worst", "s = 'a ' * 32768", "r = s.split()"),
        Case("scan", "sum 16k", "worst", "a = [1] * 16384", "r = sum(a)"),
        Case("scan", "any 16k", "worst", "a = [0] * 16384", "r = any(a)"),
        Case("shift", "insert at 0 of 16k", "worst", "a = [0] * 16000", "a.insert(0, 1)\n        a.pop(0)"),
        Case("encode", "ctx.set small", "small", "a = [1, 2]", "ctx.set('k', a)"),
        Case("encode", "ctx.set 16k list", "worst", "a = [1] * 16000", "ctx.set('k', a)"),
        Case("encode", "ctx.set nested too big (fails)", "worst", "a = [[0] * 300] * 300", "ctx.set('k', a)", False),
        Case("encode", "ctx.emit nested too big (fails)", "worst", "a = [[0] * 300] * 300", "ctx.emit('e', a)", False),
        Case("encode", "return nested too big (fails)", "worst", "a = [[0] * 300] * 300", "return a", False),
        Case("int", "256-bit * and //", "worst", "x = 2 ** 255 - 1\n    y = 2 ** 127 + 1", "r = (x // y) * y"),
    ]


CASES = _cases()


def _source(case: Case) -> str:
    if case.loop:
        body = f"    {case.setup}\n    while True:\n        {case.step}\n"
    else:
        body = f"    {case.setup}\n    {case.step}\n"
    return f"def run():\n{body}"


@dataclass(frozen=True)
class Measurement:
    case: Case
    gas: int
    seconds: float
    status: str

    @property
    def ns_per_gas(self) -> float:
        return self.seconds / max(1, self.gas) * 1e9


def measure(case: Case, vm: VM, gas: int, repeat: int) -> Measurement:
    state = MemoryStorage()
    deployed = vm.deploy(state, DEPLOYER, _source(case), [], block=BLOCK, gas_limit=5_000_000)
    if not deployed.ok or deployed.address is None:
        raise RuntimeError(f"calibration case {case.name!r} does not deploy: {deployed.error}")
    best: Measurement | None = None
    for _ in range(repeat):
        started = time.process_time()
        receipt = vm.call(state, DEPLOYER, deployed.address, "run", [], block=BLOCK, gas_limit=gas)
        elapsed = time.process_time() - started
        # Each case ends in out-of-gas or at a limit ("failed"); any other end means the case is broken.
        if receipt.status not in ("out_of_gas", "failed") or "line 1:" in (receipt.error or ""):
            raise RuntimeError(f"calibration case {case.name!r} ended {receipt.status}: {receipt.error}")
        found = Measurement(case, receipt.gas_used, elapsed, receipt.status)
        if best is None or found.ns_per_gas < best.ns_per_gas:
            best = found
    assert best is not None
    return best


def calibrate(version: int = LATEST_VERSION, gas: int = DEFAULT_GAS, repeat: int = 3) -> list[Measurement]:
    """Every case under VM `version`; the first is the tight loop the others are compared with."""
    rules = rules_for(version)
    vm = VM(rules.schedule, rules.limits)
    return [measure(case, vm, gas, repeat) for case in CASES]


def ratios(results: list[Measurement]) -> dict[str, float]:
    """ns per gas of each case over the tight loop's, keyed by "class: case (size)"."""
    baseline = results[0].ns_per_gas
    return {f"{m.case.kind}: {m.case.name} ({m.case.size})": m.ns_per_gas / baseline for m in results}


def worst_by_class(results: list[Measurement]) -> dict[str, float]:
    baseline = results[0].ns_per_gas
    worst: dict[str, float] = {}
    for m in results:
        worst[m.case.kind] = max(worst.get(m.case.kind, 0.0), m.ns_per_gas / baseline)
    return worst


def table(results: list[Measurement], version: int) -> str:
    baseline = results[0].ns_per_gas
    lines = [
        f"VM version {version}; tight loop {baseline:.1f} ns/gas",
        "| class | case | size | gas | ns/gas | × loop |",
        "|---|---|---|---:|---:|---:|",
    ]
    for m in results:
        c = m.case
        lines.append(
            f"| {c.kind} | {c.name} | {c.size} | {m.gas} | {m.ns_per_gas:.1f} | {m.ns_per_gas / baseline:.2f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="ns of CPU per gas for every gas-charged operation class")
    parser.add_argument("--version", type=int, default=LATEST_VERSION, help="VM version whose schedule to measure")
    parser.add_argument("--gas", type=int, default=DEFAULT_GAS, help="gas limit of each measured call")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the fastest is kept")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    options = parser.parse_args(argv)
    try:
        rules_for(options.version)
    except ValueError as exc:
        parser.error(f"--version: {exc}")
    results = calibrate(options.version, options.gas, options.repeat)
    if options.json:
        doc = {
            "version": options.version,
            "tight_loop_ns_per_gas": results[0].ns_per_gas,
            "ratios": ratios(results),
            "worst_by_class": worst_by_class(results),
        }
        print(json.dumps(doc, indent=2))
        return 0
    print(table(results, options.version))
    print("worst case per class (× tight loop):")
    for kind, ratio in sorted(worst_by_class(results).items(), key=lambda item: -item[1]):
        print(f"  {kind:<10} {ratio:6.2f}")
    return 0
