"""MemoryStorage against the reference model, and the key layout's separation between contracts."""

from __future__ import annotations

from hypothesis import given, settings

from consensus.vm import MemoryStorage, code_key, meta_key, name_key, storage_key
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
