"""The streaming bottom-up builder against a transcription of go-unixfs's top-down balanced builder."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from storage.address import CID, DAG_PB, RAW
from storage.dag import iter_file
from storage.dagpb import Link, encode_node
from storage.importer import import_bytes
from storage.unixfs import file_node_data


class _GoBalanced:
    """go-unixfs importer/balanced/builder.go `Layout` + `fillNodeRec`, over an in-memory list of chunks."""

    def __init__(self, chunks: list[bytes], max_links: int) -> None:
        self.chunks = chunks
        self.next = 0
        self.max_links = max_links

    def done(self) -> bool:
        return self.next == len(self.chunks)

    def leaf(self) -> tuple[CID, int, int]:
        data = self.chunks[self.next]
        self.next += 1
        return CID.of(RAW, data), len(data), len(data)

    def commit(self, children: list[tuple[CID, int, int]]) -> tuple[CID, int, int]:
        block = encode_node([Link(c, t) for c, t, _ in children], file_node_data([f for _, _, f in children]))
        return CID.of(DAG_PB, block), len(block) + sum(t for _, t, _ in children), sum(f for _, _, f in children)

    def fill(self, children: list[tuple[CID, int, int]], depth: int) -> tuple[CID, int, int]:
        while len(children) < self.max_links and not self.done():
            children.append(self.leaf() if depth == 1 else self.fill([], depth - 1))
        return self.commit(children)

    def layout(self) -> CID:
        if self.done():
            return CID.of(RAW, b"")
        root = self.leaf()
        depth = 1
        while not self.done():
            root = self.fill([root], depth)
            depth += 1
        return root[0]


@settings(max_examples=60, deadline=None)
@given(size=st.integers(min_value=0, max_value=200), chunk=st.integers(1, 5), links=st.integers(2, 4))
def test_streaming_builder_matches_go_top_down_layout(size: int, chunk: int, links: int) -> None:
    data = bytes(i % 253 for i in range(size))
    root, blocks = import_bytes(data, chunk_size=chunk, max_links=links)
    chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    assert root == _GoBalanced(chunks, links).layout()
    store = {b.cid: b.data for b in blocks}
    assert b"".join(iter_file(store.__getitem__, root)) == data
