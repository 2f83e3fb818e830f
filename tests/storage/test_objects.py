from __future__ import annotations

import asyncio
import os
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.address import CID
from storage.blockstore import Blockstore
from storage.errors import BlockNotFoundError
from storage.importer import CHUNK_SIZE, import_bytes
from storage.objects import ObjectStore


def _pattern(size: int) -> bytes:
    return bytes(i * 7 % 256 for i in range(size))


async def _chunks(data: bytes, piece: int = 65_536) -> AsyncIterator[bytes]:
    for start in range(0, len(data), piece):
        yield data[start : start + piece]


@pytest.fixture
def objects(tmp_path: Path) -> ObjectStore:
    return ObjectStore(Blockstore(tmp_path), batch_bytes=CHUNK_SIZE)


async def test_add_stream_and_cat_roundtrip(objects: ObjectStore) -> None:
    data = _pattern(3 * CHUNK_SIZE + 99)
    root = await objects.add_stream(_chunks(data))
    assert root == import_bytes(data)[0]
    assert b"".join(objects.cat(root)) == data
    assert b"".join([leaf async for leaf in objects.cat_stream(root)]) == data
    assert [p.root for p in objects.pins()] == [root]
    assert objects.missing(root) == []


async def test_gc_keeps_pinned_and_reclaims_unpinned(objects: ObjectStore) -> None:
    kept = objects.add_bytes(_pattern(2 * CHUNK_SIZE + 5), replication=2)
    dropped = objects.add_bytes(b"temporary", pin=False)
    report = objects.gc()
    assert report.removed_blocks == 1 and report.freed_bytes == len(b"temporary")
    assert not objects.has(dropped)
    assert b"".join(objects.cat(kept)) == _pattern(2 * CHUNK_SIZE + 5)
    assert objects.pins()[0].replication == 2
    objects.unpin(kept)
    assert objects.gc().removed_blocks == 3  # two identical full leaves are one block, + tail + root
    assert objects.blocks.stats() == (0, 0)


async def test_gc_during_an_add_does_not_reclaim_its_blocks(objects: ObjectStore) -> None:
    data = _pattern(4 * CHUNK_SIZE)
    gate = asyncio.Event()
    reports = []

    async def source() -> AsyncIterator[bytes]:
        async for chunk in _chunks(data[: 2 * CHUNK_SIZE], CHUNK_SIZE):
            yield chunk
        reports.append(objects.gc())  # the first two leaves are committed but nothing is pinned yet
        gate.set()
        yield data[2 * CHUNK_SIZE :]

    root = await objects.add_stream(source())
    assert gate.is_set() and reports[0].removed_blocks == 0
    assert b"".join(objects.cat(root)) == data


async def test_pin_needs_the_root_locally(objects: ObjectStore) -> None:
    with pytest.raises(BlockNotFoundError):
        objects.pin(CID.parse("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"))
    with pytest.raises(ValueError):
        objects.pin(objects.add_bytes(b"x"), replication=0)


async def test_missing_lists_absent_blocks(objects: ObjectStore) -> None:
    root = objects.add_bytes(_pattern(2 * CHUNK_SIZE))
    leaf = next(c for c in objects.blocks.iter_cids() if c != root)
    objects.blocks.delete_many([leaf])
    assert objects.missing(root) == [leaf]


async def test_streaming_add_and_cat_use_constant_memory(tmp_path: Path) -> None:
    objects = ObjectStore(Blockstore(tmp_path), batch_bytes=1 << 20)
    size = 24 << 20

    async def source() -> AsyncIterator[bytes]:
        piece = bytes(range(256)) * 256  # 64 KiB, reused: the source itself holds no memory
        for _ in range(size // len(piece)):
            yield piece

    tracemalloc.start()
    try:
        root = await objects.add_stream(source())
        total = 0
        for leaf in objects.cat(root):
            total += len(leaf)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == size
    assert peak < 6 << 20, f"peak {peak} bytes for a {size}-byte file"


async def test_a_failing_source_leaves_no_pin_and_no_protected_session(objects: ObjectStore) -> None:
    async def source() -> AsyncIterator[bytes]:
        yield _pattern(3 * CHUNK_SIZE)
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await objects.add_stream(source())
    assert objects.pins() == []
    assert objects.blocks.stats() == (0, 0)  # an add indexes nothing before its commit
    assert objects.gc().removed_blocks == 0 and objects._sessions == {}


async def test_pack_bytes_of_a_failed_add_are_reclaimed_by_compaction(tmp_path: Path) -> None:
    store = Blockstore(tmp_path, max_pack_bytes=4 * CHUNK_SIZE, pack_min_batch=0)
    objects = ObjectStore(store, batch_bytes=CHUNK_SIZE)

    async def failing() -> AsyncIterator[bytes]:
        yield os.urandom(4 * CHUNK_SIZE)  # fills pack 0 exactly
        yield os.urandom(CHUNK_SIZE)  # the add waits for the first batch's write before taking this one
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await objects.add_stream(failing())
    kept = await objects.add_stream(_chunks(os.urandom(4 * CHUNK_SIZE)))
    report = objects.gc()
    assert report.removed_blocks == 0 and report.compacted_bytes >= 4 * CHUNK_SIZE
    assert [p.root for p in objects.pins()] == [kept] and objects.missing(kept) == []


def test_blocks_of_a_fetch_in_progress_survive_gc(objects: ObjectStore) -> None:
    store = objects
    root, blocks = import_bytes(_pattern(3 * CHUNK_SIZE))
    children = [b for b in blocks if b.cid != root]
    with store.protected() as fetched:
        fetched.update(b.cid for b in children)
        store.blocks.put_many(children)  # unpinned, root not stored yet: what a fetch looks like midway
        assert store.gc().removed_blocks == 0
    assert store.gc().removed_blocks == len({b.cid for b in children})  # equal chunks share a block
