"""Deploy, call, view, ABI, names, cross-contract calls, storage snapshots and receipts."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from consensus.vm import (
    VM,
    Event,
    MemoryStorage,
    Receipt,
    ReceiptFormatError,
    code_key,
    contract_address,
    meta_key,
    name_key,
    select_events,
    storage_key,
)
from primitives import codec
from primitives.keys import address_of
from tests.vm.helpers import BLOCK, DEPLOYER, GAS, SENDER, deploy

COUNTER = """
def init(start: int):
    ctx.set("n", start)

def bump(by: int) -> int:
    n = ctx.get("n") + by
    ctx.set("n", n)
    ctx.emit("bumped", {"n": n})
    return n

def read() -> int:
    return ctx.get("n")

def whoami() -> list:
    return [ctx.caller, ctx.caller_pk, ctx.origin, ctx.address, ctx.height, ctx.time]

def _secret() -> int:
    return 42
"""


@pytest.fixture
def world() -> tuple[VM, MemoryStorage, bytes]:
    vm, state = VM(), MemoryStorage()
    receipt = deploy(vm, state, COUNTER, [10], name="counter")
    assert receipt.ok, receipt.error
    assert receipt.address is not None
    return vm, state, receipt.address


def test_deploy_stores_code_meta_and_name_under_the_documented_keys(world: tuple[VM, MemoryStorage, bytes]) -> None:
    _, state, address = world
    code_hash = hashlib.sha256(COUNTER.encode()).digest()
    assert address == contract_address(address_of(DEPLOYER), hashlib.sha256(state.items[code_key(address)]).digest())
    assert state.get(code_key(address)) is not None
    meta = codec.decode(state.items[meta_key(address)])
    assert meta == {"deployer": address_of(DEPLOYER), "code_hash": code_hash, "name": "counter"}
    assert state.get(name_key("counter")) == address
    assert state.get(storage_key(address, b"n")) == codec.encode(10)


def test_same_code_same_deployer_needs_a_new_salt(world: tuple[VM, MemoryStorage, bytes]) -> None:
    vm, state, address = world
    again = deploy(vm, state, COUNTER, [1])
    assert again.status == "failed" and again.error is not None and "salt" in again.error
    other = deploy(vm, state, COUNTER, [1], salt=1)
    assert other.ok and other.address not in (None, address)
    for salt in (-1, 2**64):
        bad_salt = deploy(vm, state, COUNTER, [1], salt=salt)
        assert bad_salt.status == "failed" and bad_salt.error is not None and "64" in bad_salt.error
    surrogate = deploy(vm, state, "X = '\ud800'\n")
    assert surrogate.status == "invalid" and surrogate.error is not None and "Unicode" in surrogate.error
    taken = deploy(vm, state, COUNTER, [1], salt=2, name="counter")
    assert taken.status == "failed" and taken.error is not None and "taken" in taken.error


def test_call_by_name_or_address_changes_state_and_emits(world: tuple[VM, MemoryStorage, bytes]) -> None:
    vm, state, address = world
    first = vm.call(state, SENDER, "counter", "bump", [5], block=BLOCK, gas_limit=GAS)
    second = vm.call(state, SENDER, address, "bump", [1], block=BLOCK, gas_limit=GAS)
    assert (first.return_value, second.return_value) == (15, 16)
    assert second.events == (Event(address, "bumped", {"n": 16}),)
    assert first.address == address


def test_ctx_fields_describe_the_call(world: tuple[VM, MemoryStorage, bytes]) -> None:
    vm, state, address = world
    receipt = vm.call(state, SENDER, address, "whoami", [], block=BLOCK, gas_limit=GAS)
    sender = address_of(SENDER)
    assert receipt.return_value == [sender, SENDER, sender, address, BLOCK.height, BLOCK.time]


@pytest.mark.parametrize(
    ("func", "args", "words"),
    [
        ("missing", [], "no public function"),
        ("_secret", [], "no public function"),
        ("init", [1], "no public function"),
        ("bump", [], "takes 1"),
        ("bump", [True], "must be int"),
        ("bump", ["1"], "must be int"),
    ],
)
def test_bad_calls_fail_without_state_change(
    world: tuple[VM, MemoryStorage, bytes], func: str, args: list[codec.Value], words: str
) -> None:
    vm, state, address = world
    before = dict(state.items)
    receipt = vm.call(state, SENDER, address, func, args, block=BLOCK, gas_limit=GAS)
    assert receipt.status == "failed" and receipt.error is not None and words in receipt.error
    assert receipt.gas_used >= vm.schedule.call_base
    assert state.items == before


def test_unknown_contract_is_a_failed_receipt() -> None:
    vm, state = VM(), MemoryStorage()
    for target in ("nobody", b"\x00" * 20, b"short"):
        receipt = vm.call(state, SENDER, target, "f", [], block=BLOCK, gas_limit=GAS)
        assert receipt.status == "failed" and receipt.error is not None and "no contract" in receipt.error


def test_view_reads_but_cannot_write(world: tuple[VM, MemoryStorage, bytes]) -> None:
    vm, state, _ = world
    before = dict(state.items)
    assert vm.view(state, "counter", "read", [], block=BLOCK).return_value == 10
    write = vm.view(state, "counter", "bump", [1], block=BLOCK)
    assert write.status == "failed" and write.error is not None and "read-only" in write.error
    assert state.items == before


def test_abi_lists_public_functions(world: tuple[VM, MemoryStorage, bytes]) -> None:
    vm, state, address = world
    abi: Any = vm.abi(state, "counter")
    assert abi["address"] == address
    assert [f["name"] for f in abi["functions"]] == ["bump", "read", "whoami"]


CALLER = """
def relay(target: bytes, by: int) -> list:
    n = ctx.call(target, "bump", [by])
    return [n, ctx.call("counter", "whoami", [])]

def relay_fail(target: bytes) -> int:
    ctx.set("mine", 1)
    return ctx.call(target, "bump", ["oops"])
"""


def test_cross_contract_call_sees_the_calling_contract_as_caller(world: tuple[VM, MemoryStorage, bytes]) -> None:
    vm, state, counter = world
    relay = deploy(vm, state, CALLER)
    assert relay.ok and relay.address is not None
    receipt = vm.call(state, SENDER, relay.address, "relay", [counter, 3], block=BLOCK, gas_limit=GAS)
    assert receipt.ok, receipt.error
    result: Any = receipt.return_value
    n, who = result
    assert n == 13
    assert who[:4] == [relay.address, b"", address_of(SENDER), counter]
    assert [e.contract for e in receipt.events] == [counter]


def test_failure_inside_a_nested_call_reverts_the_whole_transaction(world: tuple[VM, MemoryStorage, bytes]) -> None:
    vm, state, counter = world
    relay = deploy(vm, state, CALLER)
    assert relay.address is not None
    before = dict(state.items)
    receipt = vm.call(state, SENDER, relay.address, "relay_fail", [counter], block=BLOCK, gas_limit=GAS)
    assert receipt.status == "failed" and receipt.error is not None and "must be int" in receipt.error
    assert state.items == before


def test_two_vms_agree_and_programs_are_cached() -> None:
    receipts = []
    for _ in range(2):
        vm, state = VM(), MemoryStorage()
        deployed = deploy(vm, state, COUNTER, [1])
        assert deployed.address is not None
        receipts.append(vm.call(state, SENDER, deployed.address, "bump", [2], block=BLOCK, gas_limit=GAS))
        assert vm.compile(COUNTER.lstrip("\n")) is vm.compile(COUNTER.lstrip("\n"))
    assert receipts[0] == receipts[1]


def test_receipt_round_trips_through_the_codec(world: tuple[VM, MemoryStorage, bytes]) -> None:
    vm, state, _ = world
    receipt = vm.call(state, SENDER, "counter", "bump", [2], block=BLOCK, gas_limit=GAS)
    decoded = Receipt.from_value(codec.decode(codec.encode(receipt.to_value())))
    assert decoded == receipt
    bad_receipts: list[codec.Value] = [{"status": 1}, [], {"status": "ok", "gas_used": 1, "events": [5]}]
    for bad in bad_receipts:
        with pytest.raises(ReceiptFormatError):
            Receipt.from_value(bad)


def test_select_events_filters_by_contract_name_and_field() -> None:
    events = [
        Event(b"a", "access", {"patient": b"p1"}),
        Event(b"a", "access", {"patient": b"p2"}),
        Event(b"b", "access", {"patient": b"p1"}),
        Event(b"a", "other", 5),
    ]
    assert list(select_events(events, contract=b"a", where={"patient": b"p1"})) == [events[0]]
    assert list(select_events(events, name="other")) == [events[3]]
    assert len(list(select_events(events))) == 4


def test_memory_storage_snapshots_nest_and_revert_in_order() -> None:
    state = MemoryStorage({b"k": b"0"})
    outer = state.snapshot()
    state.set(b"k", b"1")
    inner = state.snapshot()
    state.set(b"k", b"2")
    state.delete(b"k")
    state.set(b"new", b"x")
    state.revert(inner)
    assert state.items == {b"k": b"1"}
    with pytest.raises(ValueError):
        state.commit(inner)
    state.revert(outer)
    assert state.items == {b"k": b"0"}
    token = state.snapshot()
    state.set(b"k", b"3")
    state.commit(token)
    assert state.items == {b"k": b"3"}


def test_zero_or_negative_gas_limit_is_out_of_gas_not_a_crash(world: tuple[VM, MemoryStorage, bytes]) -> None:
    vm, state, address = world
    for limit in (0, -5):
        receipt = vm.call(state, SENDER, address, "read", [], block=BLOCK, gas_limit=limit)
        assert (receipt.status, receipt.gas_used) == ("out_of_gas", 0)
