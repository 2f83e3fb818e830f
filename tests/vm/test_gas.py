"""Gas: charged from the table, size-proportional, bounded; failures revert state and still cost gas."""

from __future__ import annotations

import dataclasses
import time
from types import MappingProxyType

from consensus.vm import VM, GasSchedule, MemoryStorage, storage_key
from consensus.vm.gas import NODE_COSTS
from primitives import codec
from tests.vm.helpers import BLOCK, SENDER, deploy, run

RETURN_ONE = "def main():\n    return 1\n"


def _gas(source: str, vm: VM | None = None, args: list[codec.Value] | None = None) -> int:
    receipt = run(source, args=args or [], vm=vm)
    assert receipt.ok, receipt.error
    return receipt.gas_used


def test_minimal_call_costs_exactly_what_the_table_says() -> None:
    s = GasSchedule()
    args_bytes = len(codec.encode([]))
    return_bytes = len(codec.encode(1))
    expected = (
        s.call_base
        + s.arg_byte * args_bytes
        + s.function_call
        + s.nodes["Return"]
        + s.nodes["Constant"]
        + s.arg_byte * return_bytes
    )
    assert _gas(RETURN_ONE) == expected


def test_changing_a_table_entry_changes_the_charge_by_exactly_that_much() -> None:
    costs = dict(NODE_COSTS)
    costs["BinOp"] += 100
    vm = VM(dataclasses.replace(GasSchedule(), nodes=MappingProxyType(costs)))
    source = "def main():\n    return 1 + 2 + 3\n"  # two BinOps
    assert _gas(source, vm) - _gas(source) == 200


def test_loop_iterations_are_charged_per_turn() -> None:
    body = "def main(n: int):\n    i = 0\n    while i < n:\n        i += 1\n    return i\n"
    ten, twenty = _gas(body, args=[10]), _gas(body, args=[20])
    s = GasSchedule()
    # One turn: the iteration, `i < n` (Compare + two Names), `i += 1` (AugAssign + Constant; small ints pay no
    # size surcharge).
    per_turn = s.loop_iteration + s.nodes["Compare"] + 2 * s.nodes["Name"] + s.nodes["AugAssign"]
    per_turn += s.nodes["Constant"]
    assert twenty - ten == 10 * per_turn


def test_storage_is_charged_per_byte_written_and_read() -> None:
    s = GasSchedule()
    write = "def main(v: bytes):\n    ctx.set('k', v)\n"
    short, longer = _gas(write, args=[b"a"]), _gas(write, args=[b"a" * 101])
    # 100 more bytes of value (and of argument), same key; the CBOR header grows by one byte at 24+.
    assert longer - short == s.storage_write_byte * 101 + s.arg_byte * 101
    read = "def main(n: int):\n    ctx.set('k', b'a' * n)\n    return len(ctx.get('k'))\n"
    assert _gas(read, args=[200]) - _gas(read, args=[100]) >= (s.storage_write_byte + s.storage_read_byte) * 100


def test_big_operands_cost_more_than_small_ones() -> None:
    concat = "def main(n: int):\n    s = 'x' * n\n    return len(s + s)\n"
    assert _gas(concat, args=[20_000]) - _gas(concat, args=[10]) > 1000
    ints = "def main(e: int):\n    x = 3 ** e\n    return x + x > 0\n"
    assert _gas(ints, args=[150]) > _gas(ints, args=[2])


def test_out_of_gas_uses_the_whole_limit_and_reverts_state() -> None:
    vm, state = VM(), MemoryStorage()
    source = "def main():\n    ctx.set('k', 1)\n    ctx.emit('e', 1)\n    while True:\n        pass\n"
    deployed = deploy(vm, state, source)
    assert deployed.address is not None
    before = dict(state.items)
    receipt = vm.call(state, SENDER, deployed.address, "main", [], block=BLOCK, gas_limit=5_000)
    assert receipt.status == "out_of_gas"
    assert receipt.gas_used == 5_000
    assert receipt.error == "line 5: out of gas (limit 5000)"
    assert receipt.events == ()
    assert state.items == before


def test_infinite_loop_ends_quickly_in_out_of_gas() -> None:
    started = time.process_time()
    receipt = run("def main():\n    x = 0\n    while True:\n        x += 1\n", gas=1_000_000)
    assert receipt.status == "out_of_gas"
    assert time.process_time() - started < 2.0


def test_exception_after_writes_reverts_every_write() -> None:
    vm, state = VM(), MemoryStorage()
    source = (
        "def main(fail: bool):\n    ctx.set('a', 1)\n    ctx.set('b', [1, 2])\n    ctx.delete('c')\n"
        "    if fail:\n        return 1 // 0\n\ndef init():\n    ctx.set('c', 'kept')\n"
    )
    deployed = deploy(vm, state, source)
    assert deployed.ok and deployed.address is not None
    before = dict(state.items)
    failed = vm.call(state, SENDER, deployed.address, "main", [True], block=BLOCK, gas_limit=100_000)
    assert failed.status == "failed" and failed.gas_used > 0
    assert state.items == before
    ok = vm.call(state, SENDER, deployed.address, "main", [False], block=BLOCK, gas_limit=100_000)
    assert ok.ok
    assert state.get(storage_key(deployed.address, b"a")) == codec.encode(1)
    assert state.get(storage_key(deployed.address, b"c")) is None


def test_revert_keeps_no_events_but_reports_gas() -> None:
    receipt = run("def main():\n    ctx.emit('e', 1)\n    revert('no')\n")
    assert receipt.status == "reverted" and receipt.error == "line 3: no"
    assert receipt.events == ()
    assert receipt.gas_used > GasSchedule().event_base


def test_events_are_bounded_in_count_and_size() -> None:
    many = run("def main():\n    for i in range(65):\n        ctx.emit('e', i)\n")
    assert many.status == "failed" and many.error is not None and "events" in many.error
    big = run("def main():\n    ctx.emit('e', 'x' * 5000)\n")
    assert big.status == "failed" and big.error is not None and "4096" in big.error
    fine = run("def main():\n    for i in range(3):\n        ctx.emit('tick', {'i': i})\n")
    assert [e.data for e in fine.events] == [{"i": 0}, {"i": 1}, {"i": 2}]


def test_stored_values_must_be_encodable() -> None:
    receipt = run("def main():\n    ctx.set('k', {1: 2})\n")
    assert receipt.status == "failed" and receipt.error is not None and "map keys" in receipt.error
    wide = run("def main():\n    ctx.set('k', 2 ** 70)\n")
    assert wide.status == "failed" and wide.error is not None and "64-bit" in wide.error
