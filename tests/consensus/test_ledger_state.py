from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import smt
from consensus.state import LayeredState, MemoryState, WorkingState


def test_snapshot_revert_nests_and_restores_exact_values() -> None:
    base = MemoryState()
    base.values[b"a"] = b"base"
    state = WorkingState(base)
    state.set(b"a", b"1")
    outer = state.snapshot()
    state.set(b"a", b"2")
    state.set(b"b", b"new")
    inner = state.snapshot()
    state.delete(b"a")
    assert state.get(b"a") is None
    state.revert(inner)
    assert state.get(b"a") == b"2" and state.get(b"b") == b"new"
    state.revert(outer)
    assert state.get(b"a") == b"1" and state.get(b"b") is None
    state.revert(0)
    assert state.get(b"a") == b"base"
    with pytest.raises(ValueError):
        state.revert(5)


def test_commit_leaves_the_base_untouched_and_no_op_writes_change_no_node() -> None:
    base = MemoryState()
    first = WorkingState(base)
    first.set(b"k", b"v")
    base.apply(first.commit())
    root = base.root
    state = WorkingState(base)
    state.set(b"k", b"other")
    state.set(b"k", b"v")  # back to what it was
    changes = state.commit()
    assert changes.root == root and dict(changes.nodes) == {} and base.get_value(b"k") == b"v"
    speculative = WorkingState(base)
    speculative.set(b"x", b"y")
    assert speculative.commit().root != root
    assert base.root == root  # a dropped proposal changed nothing


def test_layered_state_executes_on_top_of_unpersisted_changes() -> None:
    base = MemoryState()
    first = WorkingState(base)
    first.set(b"a", b"1")
    changes = first.commit()
    layered = LayeredState(base, changes)
    assert layered.get_value(b"a") == b"1" and smt.root_of(layered) == changes.root
    second = WorkingState(layered)
    second.set(b"b", b"2")
    after = second.commit()
    base.apply(changes)
    base.apply(after)
    assert base.root == after.root and base.get_value(b"b") == b"2"


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("set"), st.sampled_from([b"a", b"b", b"c"]), st.binary(max_size=3)),
            st.tuples(st.just("delete"), st.sampled_from([b"a", b"b", b"c"]), st.just(b"")),
            st.tuples(st.just("snapshot"), st.just(b""), st.just(b"")),
            st.tuples(st.just("revert"), st.just(b""), st.just(b"")),
        ),
        max_size=40,
    )
)
def test_snapshot_revert_matches_a_copying_model(ops: list[tuple[str, bytes, bytes]]) -> None:
    base = MemoryState()
    seed = WorkingState(base)
    seed.set(b"a", b"base-a")
    base.apply(seed.commit())
    state = WorkingState(base)
    model: dict[bytes, bytes | None] = {b"a": b"base-a", b"b": None, b"c": None}
    stack: list[tuple[int, dict[bytes, bytes | None]]] = []
    for op, k, v in ops:
        if op == "set":
            state.set(k, v)
            model[k] = v
        elif op == "delete":
            state.delete(k)
            model[k] = None
        elif op == "snapshot":
            stack.append((state.snapshot(), dict(model)))
        elif stack:
            token, saved = stack.pop()
            state.revert(token)
            model = saved
        assert {key: state.get(key) for key in model} == model
    reference = WorkingState(MemoryState())
    for key, value in model.items():
        if value is not None:
            reference.set(key, value)
    assert state.commit().root == reference.commit().root
