"""Gas tracks CPU: no operation class may do much more work per gas than a tight loop (bench/vm_calibration.py).

The bound here is generous (10×, against ~1.6× measured; docs/VM.md "Calibration") because CI machines are shared
and noisy; both sides of each ratio are measured in the same run, so the machine's speed cancels out. Version 1,
whose deep walks were charged 1 gas per 32 nodes, must fail it: that is what let one contract call stall the chain.
"""

from __future__ import annotations

from bench.vm_calibration import CASES, measure, worst_by_class
from consensus.vm import VM
from consensus.vm.versions import rules_for
from tests.vm.helpers import run

BOUND = 10.0
GAS = 40_000


def _worst(version: int, names: set[str] | None = None) -> dict[str, float]:
    rules = rules_for(version)
    vm = VM(rules.schedule, rules.limits)
    cases = [c for c in CASES if names is None or c.kind == "loop" or c.name in names]
    assert cases[0].kind == "loop"  # the baseline comes first
    return worst_by_class([measure(case, vm, GAS, repeat=2) for case in cases])


def test_every_operation_class_stays_within_10x_the_tight_loop_under_version_2() -> None:
    worst = _worst(2)
    assert set(worst) >= {"compare", "str", "hash", "sort", "copy", "text", "translate", "scan", "items", "int"}
    over = {kind: round(ratio, 1) for kind, ratio in worst.items() if ratio > BOUND}
    assert not over, f"classes above {BOUND}× the tight loop's ns per gas: {over}"


def test_version_1_deep_comparison_exceeds_the_bound() -> None:
    # Two deep comparisons only: version 1's worst cases (a tuple dict key: ~2,600×) run for seconds at this gas.
    worst = _worst(1, {"nested == nested", "near-miss in nested"})
    assert worst["compare"] > BOUND


FAILED_WALK = "def main():\n    a = [[0] * 400] * 400\n    return a == a\n"  # 320,802 nodes > max_weight


def test_a_deep_walk_over_the_limit_is_charged_for_the_walk_it_made() -> None:
    rules = rules_for(2)
    receipt = run(FAILED_WALK, vm=VM(rules.schedule, rules.limits), gas=1_000_000)
    assert receipt.status == "failed" and "too large for a deep operation" in (receipt.error or "")
    walk_gas = rules.schedule.walk_word * (1 + rules.limits.max_weight // 32)
    assert receipt.gas_used >= walk_gas
    old = run(FAILED_WALK, vm=VM(rules_for(1).schedule), gas=1_000_000)
    assert old.status == "failed" and old.gas_used < 1_000  # version 1: ~20 ms of walking for under 1,000 gas


def test_a_deep_walk_stops_when_its_gas_runs_out() -> None:
    rules = rules_for(2)
    receipt = run(FAILED_WALK, vm=VM(rules.schedule, rules.limits), gas=20_000)
    assert receipt.status == "out_of_gas"
    assert receipt.gas_used == 20_000


TOO_BIG_TO_STORE = "def main():\n    a = [[0] * 300] * 300\n    ctx.set('k', a)\n"  # 90,601 nodes, ~90 KB


def test_a_value_refused_as_too_large_to_store_is_charged_for_its_walk() -> None:
    rules = rules_for(2)
    receipt = run(TOO_BIG_TO_STORE, vm=VM(rules.schedule, rules.limits), gas=1_000_000)
    assert receipt.status == "failed"
    assert receipt.gas_used >= rules.schedule.walk_word * (90_601 // 32)
    old = run(TOO_BIG_TO_STORE, vm=VM(rules_for(1).schedule), gas=1_000_000)
    assert old.status == "failed" and old.gas_used < 1_000  # version 1: walked and encoded for free
