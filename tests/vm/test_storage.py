"""MemoryStorage against the reference model, and the key layout's separation between contracts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from consensus.vm import VM, MemoryStorage, OverlayStorage, code_key, meta_key, name_key, storage_key
from primitives import codec
from tests.vm.helpers import BLOCK
from tests.vm.storage_conformance import OPS, Op, check_against_model


@settings(max_examples=150)
@given(ops=OPS)
def test_memory_storage_matches_the_model(ops: list[Op]) -> None:
    check_against_model(MemoryStorage, {b"a": b"initial"}, ops)


def test_keys_of_different_contracts_and_kinds_never_collide() -> None:
    one, two = b"\x01" * 20, b"\x02" * 20
    keys = {
        storage_key(one, b"code"),
        storage_key(one, b"meta"),
        code_key(one),
        meta_key(one),
        storage_key(two, b"code"),
        code_key(two),
        name_key("ehr"),
        storage_key(one, b"/s/x"),
        storage_key(one, b"x"),
    }
    assert len(keys) == 9
    assert storage_key(one, b"k") == b"c/" + one + b"/s/k"


@settings(max_examples=150)
@given(ops=OPS)
def test_overlay_storage_matches_the_model_and_leaves_the_backend_alone(ops: list[Op]) -> None:
    backends: list[MemoryStorage] = []

    def make(initial: dict[bytes, bytes]) -> OverlayStorage:
        backends.append(MemoryStorage(initial))
        return OverlayStorage(backends[-1])

    check_against_model(make, {b"a": b"initial"}, ops)
    assert backends[0].items == {b"a": b"initial"}


def test_overlay_changes_are_the_net_effect() -> None:
    overlay = OverlayStorage(MemoryStorage({b"a": b"1", b"b": b"2"}))
    token = overlay.snapshot()
    overlay.set(b"a", b"9")
    overlay.delete(b"b")
    overlay.set(b"c", b"3")
    overlay.commit(token)
    failed = overlay.snapshot()
    overlay.set(b"d", b"lost")
    overlay.delete(b"a")
    with pytest.raises(ValueError):
        overlay.changes()
    overlay.revert(failed)
    assert overlay.changes() == {b"a": b"9", b"b": None, b"c": b"3"}
    assert overlay.get(b"b") is None and overlay.get(b"a") == b"9"


def test_a_vm_runs_on_the_overlay() -> None:
    vm, base = VM(), MemoryStorage()
    overlay = OverlayStorage(base)
    receipt = vm.deploy(overlay, b"k" * 32, "def init():\n    ctx.set('x', 1)\n", [], block=BLOCK, gas_limit=10**6)
    assert receipt.ok and base.items == {}
    assert receipt.address is not None
    assert overlay.changes()[storage_key(receipt.address, b"x")] == codec.encode(1)
