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
    blocks = [_block(os.urandom(200_000)) for _ in range(20)]  # 4 MB into a 1 MiB map
    store.put_many(blocks)
    assert store.map_size >= 4 << 20
    assert all(store.get(b.cid) == b.data for b in blocks)


def test_map_ceiling_is_a_typed_error_and_keeps_earlier_data(tmp_path: Path) -> None:
    store = Blockstore(tmp_path, initial_map_size=1 << 20, max_map_size=2 << 20)
    kept = _block(b"kept")
    store.put(kept)
    with pytest.raises(StoreFullError):
        store.put_many([_block(os.urandom(500_000)) for _ in range(8)])
    assert store.get(kept.cid) == b"kept"


def test_disk_full_is_a_typed_error_and_leaves_the_store_readable(tmp_path: Path) -> None:
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
        store = Blockstore(Path({str(tmp_path)!r}))
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
    store = Blockstore(tmp_path)
    for n in range(committed):
        data = n.to_bytes(4, "big") * 25_000
        assert store.get(CID.of(RAW, data)) == data


def test_pins_roundtrip(tmp_path: Path) -> None:
    store = Blockstore(tmp_path)
    root = CID.of(RAW, b"r")
    store.set_pin(PinRecord(root, 3))
    assert store.get_pin(root) == PinRecord(root, 3) and store.pins() == [PinRecord(root, 3)]
    store.remove_pin(root)
    assert store.get_pin(root) is None
    with pytest.raises(NotPinnedError):
        store.remove_pin(root)
