"""What any implementation of `consensus.vm.Storage` must do, as a reusable check.

The ledger's authenticated state tree can run the same operation lists through `check_against_model` to show it
behaves like `MemoryStorage` where the VM is concerned (reads, writes, deletes and nested snapshots).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from hypothesis import strategies as st

from consensus.vm import Storage

KEYS = st.sampled_from([b"a", b"b", b"c/x", b""])
VALUES = st.binary(max_size=4)

# ("set", key, value) | ("delete", key) | ("snapshot",) | ("revert",) | ("commit",)
Op = tuple[object, ...]
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("set"), KEYS, VALUES),
        st.tuples(st.just("delete"), KEYS),
        st.tuples(st.just("snapshot")),
        st.tuples(st.just("revert")),
        st.tuples(st.just("commit")),
    ),
    max_size=40,
)


def check_against_model(
    make: Callable[[dict[bytes, bytes]], Storage], initial: dict[bytes, bytes], ops: Sequence[Op]
) -> None:
    """Apply `ops` to a fresh storage and to a list-of-dicts model; every read must agree after every step."""
    storage = make(dict(initial))
    model: list[dict[bytes, bytes]] = [dict(initial)]
    tokens: list[int] = []
    for op in ops:
        kind = op[0]
        if kind == "set":
            key, value = op[1], op[2]
            assert isinstance(key, bytes) and isinstance(value, bytes)
            storage.set(key, value)
            model[-1][key] = value
        elif kind == "delete":
            key = op[1]
            assert isinstance(key, bytes)
            storage.delete(key)
            model[-1].pop(key, None)
        elif kind == "snapshot":
            tokens.append(storage.snapshot())
            model.append(dict(model[-1]))
        elif tokens and kind == "revert":
            storage.revert(tokens.pop())
            model.pop()
        elif tokens and kind == "commit":
            storage.commit(tokens.pop())
            kept = model.pop()
            model[-1] = kept
        for key in (b"a", b"b", b"c/x", b""):
            assert storage.get(key) == model[-1].get(key), (op, key)
