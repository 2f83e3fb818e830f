from __future__ import annotations

import pytest

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
