"""The UnixFS file importer: bytes in, blocks out, with the same DAG kubo builds.

Parameters (kubo: `ipfs add --cid-version=1 --raw-leaves --chunker=size-262144`, go-unixfs balanced layout):
- fixed-size chunks of 262,144 bytes (the last may be shorter), each stored as a raw block (codec 0x55);
- interior nodes are dag-pb (0x70) File nodes with at most 174 links (go-unixfs `DefaultLinksPerBlock`);
- balanced layout: every leaf sits at the same depth, the tree is filled left to right, and the root is the
  shallowest node covering all leaves, so the last branch may be a chain of one-link nodes;
- a file of zero or one chunk is just its raw leaf (the empty file is the raw block of no bytes);
- each link's Tsize is the child's cumulative size (its block plus all blocks below it) and each blocksizes
  entry is the child's file size (see `storage/dagpb.py`, `storage/unixfs.py` for the byte layout).

The builder is sans-IO and streams: it keeps one partly filled node per level (at most 174 links each), so
memory stays constant whatever the file size. go-unixfs builds the same tree top-down; we build it bottom-up by
closing a level's node only when one more child arrives for it, which yields identical nodes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TypeAlias

from storage.address import CID, DAG_PB, RAW
from storage.dagpb import Link, encode_node
from storage.unixfs import file_node_data

CHUNK_SIZE = 262_144
MAX_LINKS = 174


# A block's bytes on their way into the store: `bytes`, or a read-only view into the caller's immutable `bytes`
# (a leaf cut out of a fed piece without copying it).
Buffer: TypeAlias = bytes | memoryview


@dataclass(frozen=True, slots=True)
class Block:
    cid: CID
    data: bytes


@dataclass(frozen=True, slots=True)
class _Child:
    link: Link
    filesize: int


class Importer:
    """Feed bytes with `feed`, collect the blocks it returns, then `finish` for the root CID."""

    def __init__(self, chunk_size: int = CHUNK_SIZE, max_links: int = MAX_LINKS) -> None:
        if chunk_size <= 0 or max_links < 2:
            raise ValueError("chunk size must be positive and nodes need room for at least two links")
        self._chunk_size = chunk_size
        self._max_links = max_links
        self._pending = bytearray()
        self._levels: list[list[_Child]] = []
        self._leaves = 0
        self._size = 0
        self._finished = False

    @property
    def size(self) -> int:
        """Bytes fed so far."""
        return self._size

    def feed(self, data: bytes | bytearray | memoryview) -> list[Block]:
        """Blocks completed by `data`, each holding its own copy of its bytes."""
        return [Block(cid, bytes(chunk)) for cid, chunk in self.feed_views(data)]

    def feed_views(self, data: bytes | bytearray | memoryview) -> list[tuple[CID, Buffer]]:
        """Like `feed`, without copying: a full chunk that lies inside `data` is returned as a view of it when
        `data` is (a view of) immutable `bytes`, so the caller's piece stays alive as long as the view. The
        store writes the view straight to its pack file; copying 256 KiB per leaf cost about a fifth of an
        add (bench/store_throughput.py). Mutable input (a bytearray the caller may reuse) is copied."""
        if self._finished:
            raise RuntimeError("importer already finished")
        view = memoryview(data).cast("B")
        if not isinstance(view.obj, bytes):
            view = memoryview(bytes(view))
        self._size += len(view)
        blocks: list[tuple[CID, Buffer]] = []
        offset = 0
        if self._pending:
            take = min(self._chunk_size - len(self._pending), len(view))
            self._pending += view[:take]
            offset = take
            if len(self._pending) == self._chunk_size:
                self._add_leaf(bytes(self._pending), blocks)
                self._pending.clear()
        while len(view) - offset >= self._chunk_size:
            self._add_leaf(view[offset : offset + self._chunk_size], blocks)
            offset += self._chunk_size
        if offset < len(view):
            self._pending += view[offset:]
        return blocks

    def finish(self) -> tuple[CID, list[Block]]:
        """Close the tree: (root CID, the remaining blocks, root last)."""
        if self._finished:
            raise RuntimeError("importer already finished")
        self._finished = True
        blocks: list[tuple[CID, Buffer]] = []
        if self._pending or self._leaves == 0:
            self._add_leaf(bytes(self._pending), blocks)
            self._pending.clear()
        if self._leaves == 1:
            # A single chunk is its own root: no dag-pb wrapper (what kubo does with raw leaves).
            return self._levels[0][0].link.cid, _owned(blocks)
        level = 0
        while level < len(self._levels):
            children = self._levels[level]
            if level == len(self._levels) - 1:
                root = self._close(children, blocks)
                return root.link.cid, _owned(blocks)
            self._levels[level] = []
            self._push(level + 1, self._close(children, blocks), blocks)
            level += 1
        raise AssertionError("unreachable: a file with leaves has at least one level")

    def _add_leaf(self, chunk: Buffer, blocks: list[tuple[CID, Buffer]]) -> None:
        cid = CID(RAW, hashlib.sha256(chunk).digest())  # CID.of, for a view as well as bytes
        blocks.append((cid, chunk))
        self._leaves += 1
        self._push(0, _Child(Link(cid, len(chunk)), len(chunk)), blocks)

    def _push(self, level: int, child: _Child, blocks: list[tuple[CID, Buffer]]) -> None:
        if level == len(self._levels):
            self._levels.append([])
        siblings = self._levels[level]
        if len(siblings) == self._max_links:
            # The node at this level is full and more data exists: close it and start its right sibling.
            self._levels[level] = []
            self._push(level + 1, self._close(siblings, blocks), blocks)
            siblings = self._levels[level]
        siblings.append(child)

    def _close(self, children: list[_Child], blocks: list[tuple[CID, Buffer]]) -> _Child:
        sizes = [child.filesize for child in children]
        block = encode_node([child.link for child in children], file_node_data(sizes))
        cid = CID.of(DAG_PB, block)
        blocks.append((cid, block))
        tsize = len(block) + sum(child.link.tsize for child in children)
        return _Child(Link(cid, tsize), sum(sizes))


def _owned(blocks: list[tuple[CID, Buffer]]) -> list[Block]:
    # What `finish` emits is never a view: the pending tail is copied out of its bytearray, nodes are new bytes.
    return [Block(cid, bytes(chunk)) for cid, chunk in blocks]


def import_bytes(data: bytes, chunk_size: int = CHUNK_SIZE, max_links: int = MAX_LINKS) -> tuple[CID, list[Block]]:
    """Import a whole byte string at once (tests and small records)."""
    importer = Importer(chunk_size, max_links)
    blocks = importer.feed(data)
    root, rest = importer.finish()
    return root, blocks + rest
