"""Files in the block store: streaming add and cat, recursive pins with a replication factor, and GC.

This is the thin async shell over the pure importer/walker and the synchronous `Blockstore`. An add streams:
the importer cuts and hashes the source's pieces on the event loop (leaves are views of the pieces, not
copies), and every `batch_bytes` of blocks goes to a worker thread that appends them to a pack (no sync) while
the next batch is cut and hashed (sha256 releases the GIL). At the end one commit makes it all durable: one
pack fdatasync, then one LMDB transaction with the index entries and the pin (`BlockWriter`,
storage/blockstore.py), so the pin is durable only after every block it covers. Backpressure: the source is
pulled only while at most one batch is being written, so memory stays at two batches (plus the writer's index
entries, bounded by its checkpoints) whatever the file size; an fsync never stalls the event loop.

GC is mark-and-sweep: everything reachable from a pin, plus every block an unfinished add has written, is live;
the rest is deleted. It runs synchronously on the caller's thread so no add can slip a block in between mark
and sweep. Pack bytes an unfinished add has not indexed yet are not in the index at all; `compact` leaves
their packs alone until the add commits or gives up.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from dataclasses import dataclass

from storage.address import CID
from storage.blockstore import Blockstore, BlockWriter, PinRecord
from storage.dag import iter_file, links_of
from storage.errors import BlockNotFoundError
from storage.importer import Buffer, Importer

# Bytes handed to the writer thread at a time: large enough that a hand-off's cost vanishes, small enough
# that writing one batch overlaps with hashing the next (bench/store_throughput.py --batch-mb).
BATCH_BYTES = 4 << 20


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
        """Import a byte stream; returns the root CID once every block is durable and indexed (and pinned if
        asked). Pieces of immutable `bytes` are kept referenced (not copied) until their leaves are written."""
        if replication < 1:
            raise ValueError("replication factor must be at least 1")
        session = next(self._session_ids)
        written = self._sessions.setdefault(session, set())
        importer = Importer()
        writer = self.blocks.writer()
        batch: list[tuple[CID, Buffer]] = []
        batch_size = 0
        writing: asyncio.Future[None] | None = None
        try:
            async for chunk in chunks:
                for cid, data in importer.feed_views(chunk):
                    batch.append((cid, data))
                    batch_size += len(data)
                if batch_size >= self._batch_bytes:
                    if writing is not None:
                        await writing  # at most one batch in flight: this is the backpressure
                    writing = self._start_write(writer, batch, written)
                    batch, batch_size = [], 0
            root, rest = importer.finish()
            if writing is not None:
                await writing
            writing = None
            batch.extend((block.cid, block.data) for block in rest)
            written.update(cid for cid, _ in batch)
            pin_record = PinRecord(root, replication) if pin else None
            await asyncio.to_thread(self._write_and_commit, writer, batch, pin_record)
            return root
        finally:
            if writing is not None:
                # The source failed mid-way: let the running write finish before the session's protection ends.
                await asyncio.gather(writing, return_exceptions=True)
            writer.abort()  # a no-op once committed
            del self._sessions[session]

    def _start_write(
        self, writer: BlockWriter, batch: list[tuple[CID, Buffer]], written: set[CID]
    ) -> asyncio.Future[None]:
        # Mark the blocks live before they exist on disk, so a GC that runs meanwhile cannot reclaim them.
        written.update(cid for cid, _ in batch)
        return asyncio.ensure_future(asyncio.to_thread(writer.write, batch))

    @staticmethod
    def _write_and_commit(writer: BlockWriter, batch: list[tuple[CID, Buffer]], pin: PinRecord | None) -> None:
        writer.write(batch)
        writer.commit(pin)

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
        if replication < 1:
            raise ValueError("replication factor must be at least 1")
        importer = Importer()
        blocks = importer.feed(data)
        root, rest = importer.finish()
        self.blocks.put_many(blocks + rest, trusted=True, pin=PinRecord(root, replication) if pin else None)
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
