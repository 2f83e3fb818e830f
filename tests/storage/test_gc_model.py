"""GC against a model: after any sequence of adds, pins, unpins and collections, every pinned file reads back
intact and the store holds exactly the blocks reachable from pins."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from storage.address import CID
from storage.blockstore import Blockstore
from storage.importer import import_bytes
from storage.objects import ObjectStore

CHUNK = 262_144  # one UnixFS leaf per seed: multi-leaf files share leaves

# Files share content (same seeds give same chunks) so deduplication and shared blocks are exercised.
files = st.lists(st.integers(0, 3), min_size=0, max_size=6).map(
    lambda seeds: b"".join(bytes([s]) * CHUNK for s in seeds)
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), files, st.booleans()),
        st.tuples(st.just("unpin"), st.integers(0, 10), st.booleans()),
        st.tuples(st.just("gc"), st.just(b""), st.booleans()),
    ),
    max_size=12,
)


@settings(max_examples=15, deadline=None)
@given(ops=operations)
def test_gc_keeps_exactly_what_pins_reach(ops: list[tuple[str, object, bool]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        # pack_min_batch=0: leaves go to pack files, so compaction during GC is exercised too.
        objects = ObjectStore(Blockstore(Path(tmp), pack_min_batch=0))
        pinned: dict[CID, bytes] = {}
        added: list[CID] = []
        for kind, arg, flag in ops:
            if kind == "add" and isinstance(arg, bytes):
                root = objects.add_bytes(arg, pin=flag)
                added.append(root)
                if flag:
                    pinned[root] = arg
            elif kind == "unpin" and isinstance(arg, int) and added:
                root = added[arg % len(added)]
                if root in pinned:
                    objects.unpin(root)
                    del pinned[root]
            elif kind == "gc":
                objects.gc()
        objects.gc()
        for root, data in pinned.items():
            assert b"".join(objects.cat(root)) == data
        reachable = {b.cid for data in pinned.values() for b in import_bytes(data)[1]}
        assert set(objects.blocks.iter_cids()) == reachable
