"""Files in the block store: streaming add and cat, recursive pins with a replication factor, and GC.

This is the thin async shell over the pure importer/walker and the synchronous `Blockstore`. Backpressure:
`add_stream` pulls the next chunk from its source only while at most one batch is being committed, and
`cat_stream` reads the next leaf only when its consumer asks for it. Commits run in a worker thread, so an fsync
does not stall the node's event loop, and one commit may run while the next batch is chunked and hashed (sha256
releases the GIL). Memory stays at two batches whatever the file size. Batches are 16 MiB by default: every
LMDB commit costs two syncs (data, then meta page), and fewer, larger commits measured clearly faster
(bench/store_throughput.py --batch-mb).

GC is mark-and-sweep: everything reachable from a pin, plus every block an unfinished add has written, is live;
the rest is deleted. It runs synchronously on the caller's thread so no add can slip a block in between mark
and sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from dataclasses import dataclass

from storage.address import CID
from storage.blockstore import Blockstore, PinRecord
from storage.dag import iter_file, links_of
from storage.errors import BlockNotFoundError
from storage.importer import Block, Importer

BATCH_BYTES = 16 << 20


@dataclass(frozen=True, slots=True)
class GcReport:
    removed_blocks: int
    freed_bytes: int
    live_blocks: int
    compacted_bytes: int = 0  # pack-file space returned to the disk


class ObjectStore:
    """UnixFS files over a `Blockstore`."""

    def __init__(self, blocks: Blockstore, batch_bytes: int = BATCH_BYTES) -> None:
        self.blocks = blocks
        self._batch_bytes = batch_bytes
        self._sessions: dict[int, set[CID]] = {}
        self._session_ids = itertools.count()

    async def add_stream(
        self, chunks: AsyncIterable[bytes | bytearray | memoryview], pin: bool = True, replication: int = 1
    ) -> CID:
        """Import a byte stream; returns the root CID once every block is committed (and pinned if asked)."""
        if replication < 1:
            raise ValueError("replication factor must be at least 1")
        session = next(self._session_ids)
        written = self._sessions.setdefault(session, set())
        importer = Importer()
        batch: list[Block] = []
        batch_size = 0
        committing: asyncio.Future[int] | None = None
        try:
            async for chunk in chunks:
                for block in importer.feed(chunk):
                    batch.append(block)
                    batch_size += len(block.data)
                if batch_size >= self._batch_bytes:
                    if committing is not None:
                        await committing  # at most one commit in flight: this is the backpressure
                    committing = self._start_commit(batch, written, None)
                    batch, batch_size = [], 0
            root, rest = importer.finish()
            if committing is not None:
                await committing
            committing = None
            pin_record = PinRecord(root, replication) if pin else None
            await self._start_commit(batch + rest, written, pin_record)
            return root
        finally:
            if committing is not None:
                # The source failed mid-way: let the running commit finish before the session's protection ends.
                await asyncio.gather(committing, return_exceptions=True)
            del self._sessions[session]

    def _start_commit(self, batch: list[Block], written: set[CID], pin: PinRecord | None) -> asyncio.Future[int]:
        # Mark the blocks live before they exist on disk, so a GC that runs meanwhile cannot reclaim them.
        written.update(block.cid for block in batch)
        return asyncio.ensure_future(asyncio.to_thread(self.blocks.put_many, batch, True, pin))

    @contextlib.contextmanager
    def protected(self) -> Iterator[set[CID]]:
        """A set whose CIDs GC treats as live while the block is open: a fetch from peers adds each block's CID
        before storing it, so a GC that runs meanwhile cannot reclaim half a file (as with an add)."""
        session = next(self._session_ids)
        self._sessions[session] = set()
        try:
            yield self._sessions[session]
        finally:
            del self._sessions[session]

    def add_bytes(self, data: bytes, pin: bool = True, replication: int = 1) -> CID:
        """Import bytes already in memory (small records, tests)."""
        importer = Importer()
        blocks = importer.feed(data)
        root, rest = importer.finish()
        self.blocks.put_many(blocks + rest, trusted=True)
        if pin:
            self.pin(root, replication)
        return root

    def cat(self, root: CID) -> Iterator[bytes]:
        """The file's bytes in order, one leaf at a time, each block verified."""
        return iter_file(self.blocks.get, root)

    async def cat_stream(self, root: CID) -> AsyncIterator[bytes]:
        for leaf in self.cat(root):
            yield leaf

    def has(self, root: CID) -> bool:
        return self.blocks.has(root)

    def missing(self, root: CID) -> list[CID]:
        """Blocks under `root` that are not stored here (empty when the whole DAG is local)."""
        absent: list[CID] = []
        for cid, block in self._walk(root):
            if block is None:
                absent.append(cid)
        return absent

    def pin(self, root: CID, replication: int = 1) -> PinRecord:
        if replication < 1:
            raise ValueError("replication factor must be at least 1")
        if not self.blocks.has(root):
            raise BlockNotFoundError(f"cannot pin {root}: it is not stored here")
        record = PinRecord(root, replication)
        self.blocks.set_pin(record)
        return record

    def unpin(self, root: CID) -> None:
        self.blocks.remove_pin(root)

    def pins(self) -> list[PinRecord]:
        return self.blocks.pins()

    def gc(self) -> GcReport:
        live: set[CID] = set().union(*self._sessions.values())
        for pin in self.blocks.pins():
            live.update(cid for cid, _ in self._walk(pin.root))
        dead = [cid for cid in self.blocks.iter_cids() if cid not in live]
        freed = self.blocks.delete_many(dead)
        return GcReport(len(dead), freed, len(live), self.blocks.compact())

    def _walk(self, root: CID) -> Iterator[tuple[CID, bytes | None]]:
        """Every block reachable from `root` (None for blocks not stored here), each visited once."""
        seen: set[CID] = set()
        stack = [root]
        while stack:
            cid = stack.pop()
            if cid in seen:
                continue
            seen.add(cid)
            try:
                block = self.blocks.get(cid)
            except BlockNotFoundError:
                yield cid, None
                continue
            yield cid, block
            stack.extend(links_of(cid, block))
