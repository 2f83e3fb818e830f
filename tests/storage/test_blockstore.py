from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from storage.address import CID, RAW
from storage.blockstore import Blockstore, PinRecord
from storage.errors import BlockHashMismatchError, BlockNotFoundError, NotPinnedError, StorageError, StoreFullError
from storage.importer import Block
from storage.objects import ObjectStore
from storage.packs import PackFiles


def _block(data: bytes) -> Block:
    return Block(CID.of(RAW, data), data)


def test_put_get_has_delete(tmp_path: Path) -> None:
    store = Blockstore(tmp_path)
    block = _block(b"hello")
    assert store.put(block) == 5
    assert store.put(block) == 0  # already there
    assert store.get(block.cid) == b"hello" and store.has(block.cid)
    assert store.delete_many([block.cid]) == 5
    with pytest.raises(BlockNotFoundError):
        store.get(block.cid)


def test_tampered_block_is_refused_on_write_and_on_read(tmp_path: Path) -> None:
    store = Blockstore(tmp_path)
    with pytest.raises(BlockHashMismatchError):
        store.put(Block(CID.of(RAW, b"good"), b"evil"))
    # Simulate rot on disk: a trusted write of wrong bytes must still be caught when read.
    store.put(Block(CID.of(RAW, b"good"), b"evil"), trusted=True)
    with pytest.raises(BlockHashMismatchError):
        store.get(CID.of(RAW, b"good"))


def test_map_grows_instead_of_failing(tmp_path: Path) -> None:
    store = Blockstore(tmp_path, initial_map_size=1 << 20)
    blocks = [_block(os.urandom(8_000)) for _ in range(500)]  # 4 MB of small (in-LMDB) blocks into a 1 MiB map
    store.put_many(blocks)
    assert store.map_size >= 4 << 20
    assert all(store.get(b.cid) == b.data for b in blocks)


def test_map_ceiling_is_a_typed_error_and_keeps_earlier_data(tmp_path: Path) -> None:
    store = Blockstore(tmp_path, initial_map_size=1 << 20, max_map_size=2 << 20)
    kept = _block(b"kept")
    store.put(kept)
    with pytest.raises(StoreFullError):
        store.put_many([_block(os.urandom(8_000)) for _ in range(500)])
    assert store.get(kept.cid) == b"kept"


@pytest.mark.parametrize("pack_min_batch", [0, 1 << 30], ids=["packs", "lmdb"])
def test_disk_full_is_a_typed_error_and_leaves_the_store_readable(tmp_path: Path, pack_min_batch: int) -> None:
    # A child process gets a 3 MB file-size limit (the kernel answers writes past it like a full disk).
    script = textwrap.dedent(
        f"""
        import os, resource, signal, sys
        from pathlib import Path
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (3 << 20, 3 << 20))
        from storage.blockstore import Blockstore
        from storage.errors import StoreFullError
        from storage.importer import Block
        from storage.address import CID, RAW
        store = Blockstore(Path({str(tmp_path)!r}), pack_min_batch={pack_min_batch})
        n = 0
        try:
            while n < 1000:
                data = n.to_bytes(4, "big") * 25_000
                store.put(Block(CID.of(RAW, data), data))
                n += 1
        except StoreFullError:
            print(n)
            sys.exit(0)
        sys.exit(1)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    committed = int(result.stdout)
    assert 5 < committed < 1000
    store = Blockstore(tmp_path, pack_min_batch=pack_min_batch)
    for n in range(committed):
        data = n.to_bytes(4, "big") * 25_000
        assert store.get(CID.of(RAW, data)) == data
    extra = _block(b"after the disk was freed" * 5000)
    store.put(extra)  # the store still takes writes, and the failed batch left no garbage in the way
    assert store.get(extra.cid) == extra.data


def test_pins_roundtrip(tmp_path: Path) -> None:
    store = Blockstore(tmp_path)
    root = CID.of(RAW, b"r")
    store.set_pin(PinRecord(root, 3))
    assert store.get_pin(root) == PinRecord(root, 3) and store.pins() == [PinRecord(root, 3)]
    store.remove_pin(root)
    assert store.get_pin(root) is None
    with pytest.raises(NotPinnedError):
        store.remove_pin(root)


def test_large_blocks_go_to_packs_and_compaction_reclaims_them(tmp_path: Path) -> None:
    store = Blockstore(tmp_path, max_pack_bytes=1 << 20, pack_min_batch=0)
    big = [_block(n.to_bytes(4, "big") * 65_536) for n in range(8)]  # 256 KiB each: four per pack
    small = _block(b"small")
    store.put_many(big[:4])
    store.put_many([*big[4:], small])  # a batch goes to one pack; this one would overflow the first
    packs = sorted((tmp_path / "packs").glob("*.pack"))
    assert len(packs) == 2 and store.stats() == (9, 8 * 262_144 + 5)
    assert all(store.get(b.cid) == b.data for b in big)
    store.delete_many(b.cid for b in big[:4])  # the whole first pack is garbage now
    store.delete_many([big[4].cid])  # a quarter of the second (the one being written: kept)
    assert store.compact() == 4 * 262_144
    assert len(list((tmp_path / "packs").glob("*.pack"))) == 1
    assert all(store.get(b.cid) == b.data for b in big[5:]) and store.get(small.cid) == b"small"
    store.close()
    reopened = Blockstore(tmp_path, max_pack_bytes=1 << 20, pack_min_batch=0)
    extra = _block(b"x" * 300_000)
    reopened.put(extra)
    assert reopened.get(extra.cid) == extra.data and reopened.get(big[7].cid) == big[7].data


def test_compaction_rewrites_mostly_empty_packs(tmp_path: Path) -> None:
    store = Blockstore(tmp_path, max_pack_bytes=1 << 20, pack_min_batch=0)
    first = [_block(n.to_bytes(4, "big") * 65_536) for n in range(4)]
    store.put_many(first)
    store.put(_block(b"next pack" * 30_000))  # rotates: the first pack is no longer written to
    store.delete_many(b.cid for b in first[:3])
    assert store.compact() == 3 * 262_144
    assert store.get(first[3].cid) == first[3].data


def test_duplicate_blocks_are_stored_once(tmp_path: Path) -> None:
    store = Blockstore(tmp_path, pack_min_batch=0)
    block = _block(b"d" * 100_000)
    assert store.put_many([block, block]) == 100_000
    assert store.put(block) == 0
    assert (tmp_path / "packs" / "00000000.pack").stat().st_size == 100_000


def test_small_batches_of_large_blocks_stay_in_lmdb(tmp_path: Path) -> None:
    store = Blockstore(tmp_path)
    block = _block(b"s" * 262_144)
    store.put(block)
    assert (tmp_path / "packs" / "00000000.pack").stat().st_size == 0 and store.get(block.cid) == block.data


def _events(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record pack appends, pack syncs and LMDB write transactions, in order."""
    events: list[str] = []
    for cls, name, label in (
        (PackFiles, "append", "append"),
        (PackFiles, "sync", "sync"),
        (Blockstore, "_write", "index"),
    ):
        original = getattr(cls, name)

        def recorded(self: object, *args: Any, _original: Any = original, _label: str = label) -> Any:
            events.append(_label)
            return _original(self, *args)

        monkeypatch.setattr(cls, name, recorded)
    return events


def test_a_writer_syncs_its_pack_once_and_before_the_index_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Blockstore(tmp_path, pack_min_batch=0)
    events = _events(monkeypatch)
    blocks = [_block(os.urandom(100_000)) for _ in range(6)]
    writer = store.writer()
    for pair in (blocks[:2], blocks[2:4], blocks[4:]):
        writer.write((b.cid, b.data) for b in pair)
    assert events == ["append"] * 3  # nothing durable, nothing indexed yet
    root = blocks[0].cid
    assert writer.commit(PinRecord(root)) == 600_000
    assert events[3:] == ["sync", "index"]
    assert store.get_pin(root) == PinRecord(root) and all(store.get(b.cid) == b.data for b in blocks)


def test_a_writer_checkpoints_so_its_memory_stays_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Blockstore(tmp_path, pack_min_batch=0, checkpoint_bytes=250_000)
    events = _events(monkeypatch)
    blocks = [_block(os.urandom(100_000)) for _ in range(6)]
    writer = store.writer()
    for block in blocks:
        writer.write([(block.cid, block.data)])
    # Every third block passes 250 kB: sync, then index — and no pin before the final commit.
    assert events == ["append", "append", "append", "sync", "index"] * 2
    assert store.pins() == [] and store.stats() == (6, 600_000)
    writer.commit(PinRecord(blocks[0].cid))
    assert store.pins() == [PinRecord(blocks[0].cid)]


def test_compaction_leaves_the_packs_of_an_open_writer_alone(tmp_path: Path) -> None:
    store = Blockstore(tmp_path, max_pack_bytes=1 << 20, pack_min_batch=0)
    blocks = [_block(n.to_bytes(4, "big") * 65_536) for n in range(6)]  # 256 KiB each: four fill a pack
    writer = store.writer()
    writer.write((b.cid, b.data) for b in blocks[:4])
    writer.write((b.cid, b.data) for b in blocks[4:])  # rotates: pack 0 is no longer written to
    assert store.compact() == 0  # pack 0 holds no indexed block, but the writer is about to index them
    writer.commit()
    assert all(store.get(b.cid) == b.data for b in blocks)
    aborted = store.writer()
    aborted.write([(_block(b"z" * 300_000).cid, b"z" * 300_000)])
    aborted.abort()
    with pytest.raises(StorageError):
        aborted.commit()


def test_two_writers_of_the_same_block_store_and_count_it_once(tmp_path: Path) -> None:
    store = Blockstore(tmp_path, max_pack_bytes=1 << 20, pack_min_batch=0)
    block = _block(b"same" * 65_536)
    first, second = store.writer(), store.writer()
    first.write([(block.cid, block.data)])
    second.write([(block.cid, block.data)])  # neither is indexed yet: both append a copy
    assert first.commit() == 262_144 and second.commit() == 0
    assert store.stats() == (1, 262_144) and store.get(block.cid) == block.data
    store.put(_block(b"next pack" * 100_000))  # rotate, so pack 0 may be compacted
    store.delete_many([block.cid])
    assert store.compact() == 2 * 262_144  # both copies were garbage once the block went: live bytes counted once


def test_small_commits_overwrite_preextended_lmdb_space(tmp_path: Path) -> None:
    store = Blockstore(tmp_path)
    data_file = tmp_path / "index" / "data.mdb"
    store.put(_block(os.urandom(200_000)))
    size = data_file.stat().st_size
    for _ in range(4):  # each stays inside the slack the first commit left: the file does not grow
        store.put(_block(os.urandom(200_000)))
        assert data_file.stat().st_size == size
    kept = [_block(os.urandom(200_000)) for _ in range(30)]  # past the slack: extended again, data intact
    for block in kept:
        store.put(block)
    store.close()
    reopened = Blockstore(tmp_path)
    assert reopened.stats()[0] == 35 and all(reopened.get(b.cid) == b.data for b in kept)


_CRASHING_ADDER = """
import asyncio, os, random, signal, sys
from pathlib import Path
from storage.blockstore import Blockstore
from storage.objects import ObjectStore
store = ObjectStore(Blockstore(Path(sys.argv[1]), max_pack_bytes=1 << 21, pack_min_batch=0,
                               checkpoint_bytes=1 << 20), batch_bytes=1 << 18)

async def pieces(seed: int, crash: bool):
    rng = random.Random(seed)
    yield seed.to_bytes(4, "big")
    for n in range(12):  # ~5 MB: checkpoints, and packs rotate, during each add
        if crash and n == 7:  # past the first checkpoint of this add
            os.kill(os.getpid(), signal.SIGKILL)
        yield rng.randbytes((n + 1) * 65_536)

async def main():
    for seed in range(int(sys.argv[2])):
        print(await store.add_stream(pieces(seed, False)), flush=True)
    await store.add_stream(pieces(99, True))

asyncio.run(main())
"""


def test_a_crash_mid_add_leaves_no_pinned_root_with_missing_blocks(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _CRASHING_ADDER, str(tmp_path), "3"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == -9, result.stderr  # killed inside the fourth add, after some of its checkpoints
    finished = [CID.parse(line) for line in result.stdout.split()]
    objects = ObjectStore(Blockstore(tmp_path, max_pack_bytes=1 << 21, pack_min_batch=0))
    assert {p.root for p in objects.pins()} == set(finished) and len(finished) == 3  # the completed adds only
    for seed, root in enumerate(finished):
        assert objects.missing(root) == []
        assert b"".join(objects.cat(root))[:4] == seed.to_bytes(4, "big")
    report = objects.gc()  # the killed add's checkpointed blocks are unpinned: reclaimed, and its packs compacted
    assert report.removed_blocks > 0 and all(objects.missing(root) == [] for root in finished)


def test_compaction_cuts_the_tail_an_interrupted_add_left_in_the_current_pack(tmp_path: Path) -> None:
    # The default pack size: everything below stays in pack 0, the pack being written, which compaction used to
    # skip, so an add killed mid-way left its bytes there until the pack reached 1 GiB.
    store = Blockstore(tmp_path, pack_min_batch=0)
    kept = [_block(n.to_bytes(4, "big") * 65_536) for n in range(3)]
    store.put_many(kept, pin=PinRecord(kept[0].cid))
    writer = store.writer()
    writer.write((b.cid, b.data) for b in (_block(bytes([n + 10]) * 262_144) for n in range(8)))
    store.close()  # the process dies: the writer never commits
    pack = tmp_path / "packs" / "00000000.pack"
    assert pack.stat().st_size == 11 * 262_144
    reopened = Blockstore(tmp_path, pack_min_batch=0)
    assert reopened.compact() == 8 * 262_144
    assert pack.stat().st_size == 3 * 262_144 and all(reopened.get(b.cid) == b.data for b in kept)
    later = _block(b"after" * 60_000)  # appends continue right after the live data
    reopened.put(later)
    assert reopened.get(later.cid) == later.data and pack.stat().st_size == 3 * 262_144 + len(later.data)
    assert reopened.compact() == 0


def test_compaction_rewrites_a_current_pack_that_is_mostly_garbage(tmp_path: Path) -> None:
    store = Blockstore(tmp_path, pack_min_batch=0)
    first, last = _block(b"first" * 60_000), _block(b"last" * 70_000)
    store.put(first)
    aborted = store.writer()
    aborted.write((b.cid, b.data) for b in (_block(bytes([n]) * 262_144) for n in range(4)))
    aborted.abort()  # a client that went away: its bytes sit between two live blocks
    store.put(last)
    assert store.compact() == 4 * 262_144
    total = sum(p.stat().st_size for p in (tmp_path / "packs").glob("*.pack"))
    assert total == len(first.data) + len(last.data)
    assert store.get(first.cid) == first.data and store.get(last.cid) == last.data


def test_compaction_leaves_the_current_pack_alone_while_a_writer_appends_to_it(tmp_path: Path) -> None:
    store = Blockstore(tmp_path, pack_min_batch=0)
    writer = store.writer()
    blocks = [_block(bytes([n]) * 262_144) for n in range(2)]
    writer.write((b.cid, b.data) for b in blocks)
    assert store.compact() == 0
    writer.commit()
    assert all(store.get(b.cid) == b.data for b in blocks) and store.compact() == 0
