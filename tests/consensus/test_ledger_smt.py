from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import smt
from consensus.errors import ProofError
from consensus.state import MemoryState, WorkingState
from primitives import codec


def sha(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def reference_root(items: dict[bytes, bytes]) -> bytes:
    """Slow, obviously-correct root: recursive split of the leaf set by key-hash bits."""
    leaves = sorted((sha(k), sha(v)) for k, v in items.items())

    def subtree(entries: list[tuple[bytes, bytes]], depth: int) -> bytes:
        if not entries:
            return smt.ZERO
        if len(entries) == 1:
            return smt.leaf_hash(*entries[0])

        def bit(kh: bytes) -> int:
            return (int.from_bytes(kh, "big") >> (255 - depth)) & 1

        left = [e for e in entries if bit(e[0]) == 0]
        right = [e for e in entries if bit(e[0]) == 1]
        return smt.inner_hash(subtree(left, depth + 1), subtree(right, depth + 1))

    return subtree(leaves, 0)


def apply(store: MemoryState, writes: Mapping[bytes, bytes | None]) -> bytes:
    state = WorkingState(store)
    for k, v in writes.items():
        if v is None:
            state.delete(k)
        else:
            state.set(k, v)
    changes = state.commit()
    store.apply(changes)
    return changes.root


def test_empty_tree_root_is_zero_and_absence_is_provable() -> None:
    store = MemoryState()
    assert store.root == smt.ZERO
    proof = smt.prove(store, b"anything")
    assert smt.verify_proof(store.root, b"anything", None, proof)
    assert not smt.verify_proof(store.root, b"anything", b"v", proof)


def test_single_leaf_root_is_the_leaf_hash() -> None:
    store = MemoryState()
    root = apply(store, {b"a": b"1"})
    assert root == smt.leaf_hash(sha(b"a"), sha(b"1"))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.binary(min_size=1, max_size=4), st.one_of(st.none(), st.binary(max_size=4))), max_size=60),
    st.integers(min_value=1, max_value=8),
)
def test_batched_updates_match_the_reference_model(ops: list[tuple[bytes, bytes | None]], batches: int) -> None:
    store, model = MemoryState(), dict[bytes, bytes]()
    chunk = max(1, len(ops) // batches)
    for start in range(0, len(ops), chunk):
        writes = dict(ops[start : start + chunk])
        apply(store, writes)
        for k, v in writes.items():
            if v is None:
                model.pop(k, None)
            else:
                model[k] = v
        assert store.root == reference_root(model)
        assert store.values == model


def test_root_is_independent_of_write_order_and_batching() -> None:
    rng = random.Random(7)
    items = {rng.randbytes(8): rng.randbytes(8) for _ in range(300)}
    one_batch, one_by_one = MemoryState(), MemoryState()
    apply(one_batch, items)
    keys = list(items)
    rng.shuffle(keys)
    for k in keys:
        apply(one_by_one, {k: items[k]})
    assert one_batch.root == one_by_one.root == reference_root(items)
    assert one_batch.nodes == one_by_one.nodes  # identical shape, position by position


def test_deleting_everything_returns_to_the_empty_tree() -> None:
    rng = random.Random(3)
    store = MemoryState()
    items = {rng.randbytes(6): b"v" for _ in range(200)}
    apply(store, items)
    apply(store, dict.fromkeys(list(items)[:150]))
    assert store.root == reference_root(dict(list(items.items())[150:]))
    apply(store, dict.fromkeys(items))
    assert store.root == smt.ZERO and store.nodes == {}


def test_inclusion_and_absence_proofs_verify_and_resist_tampering() -> None:
    rng = random.Random(11)
    store = MemoryState()
    items = {rng.randbytes(10): rng.randbytes(20) for _ in range(500)}
    apply(store, items)
    root = store.root
    for k, v in list(items.items())[:100]:
        proof = smt.prove(store, k)
        assert smt.verify_proof(root, k, v, proof)
        assert not smt.verify_proof(root, k, v + b"x", proof)
        assert not smt.verify_proof(root, k, None, proof)
        again = smt.Proof.from_value(codec.decode(codec.encode(proof.to_value())))
        assert again == proof
        if proof.siblings:
            bad = smt.Proof((bytes(32 * [1]), *proof.siblings[1:]), proof.leaf)
            assert not smt.verify_proof(root, k, v, bad)
    for _ in range(100):
        missing = rng.randbytes(11)
        proof = smt.prove(store, missing)
        assert smt.verify_proof(root, missing, None, proof)
        assert not smt.verify_proof(root, missing, b"", proof)


def test_absence_proof_cannot_be_reused_for_a_key_on_another_path() -> None:
    store = MemoryState()
    apply(store, {bytes([i]): b"v" for i in range(64)})
    proof = smt.prove(store, b"absent-1")
    assert smt.verify_proof(store.root, b"absent-1", None, proof)
    # Some other key lies on another path: the same proof must not convince for it.
    assert not all(smt.verify_proof(store.root, bytes([200, i]), None, proof) for i in range(20))
    # A present key can never be "proved" absent with a proof of some other path.
    assert not smt.verify_proof(store.root, bytes([5]), None, proof)


@pytest.mark.parametrize(
    "value",
    [[], {"siblings": [b"x"], "leaf": None}, {"siblings": [], "leaf": [b"a"]}, {"siblings": [b""] * 257, "leaf": None}],
)
def test_malformed_proofs_raise_proof_error(value: codec.Value) -> None:
    with pytest.raises(ProofError):
        smt.Proof.from_value(value)


def test_node_storage_encoding_round_trips() -> None:
    leaf = smt.make_leaf(sha(b"k"), sha(b"v"))
    assert smt.decode_node(smt.encode_node(leaf)) == leaf
    assert smt.decode_node(bytes(32)) == bytes(32)
    with pytest.raises(ValueError):
        smt.decode_node(b"123")
