"""Shared helpers for the VM tests: deploy a source and call it in one line."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from consensus.vm import VM, BlockInfo, MemoryStorage, Receipt
from primitives import codec

BLOCK = BlockInfo(height=7, time=1_000)
DEPLOYER = bytes(range(32))
SENDER = bytes(range(1, 33))
GAS = 1_000_000


def deploy(vm: VM, state: MemoryStorage, source: str, init_args: Sequence[codec.Value] = (), **kw: object) -> Receipt:
    return vm.deploy(state, DEPLOYER, textwrap.dedent(source), init_args, block=BLOCK, gas_limit=GAS, **kw)  # type: ignore[arg-type]


def run(
    source: str,
    func: str = "main",
    args: Sequence[codec.Value] = (),
    gas: int = GAS,
    vm: VM | None = None,
    state: MemoryStorage | None = None,
) -> Receipt:
    """Deploy `source` into a fresh (or given) state and call `func(*args)` as SENDER."""
    vm = vm or VM()
    state = state if state is not None else MemoryStorage()
    deployed = deploy(vm, state, source)
    assert deployed.ok, deployed.error
    assert deployed.address is not None
    return vm.call(state, SENDER, deployed.address, func, args, block=BLOCK, gas_limit=gas)


def value(source: str, func: str = "main", args: Sequence[codec.Value] = ()) -> codec.Value:
    """The return value of a call that must succeed."""
    receipt = run(source, func, args)
    assert receipt.ok, receipt.error
    return receipt.return_value


def failure(source: str, func: str = "main", args: Sequence[codec.Value] = (), gas: int = GAS) -> Receipt:
    receipt = run(source, func, args, gas)
    assert not receipt.ok, receipt
    return receipt
