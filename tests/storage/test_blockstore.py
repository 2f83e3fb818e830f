from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from storage.address import CID, RAW
from storage.blockstore import Blockstore, PinRecord
from storage.errors import BlockHashMismatchError, BlockNotFoundError, NotPinnedError, StoreFullError
from storage.importer import Block


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
