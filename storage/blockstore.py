"""Blocks and pin records in LMDB under the node's data directory.

LMDB gives crash-safe transactions (a commit is atomic and fsynced), so a failed write leaves the store as it
was. Two of its limits are handled here:
- the memory map has a fixed size: when a write hits `MapFullError` we abort, double the map (up to
  `max_map_size`) and retry the whole transaction, so callers never see it;
- a full disk makes the commit fail with ENOSPC (or EFBIG/EDQUOT under quotas): the transaction is aborted and
  `StoreFullError` says so; LMDB's copy-on-write pages mean earlier commits are untouched.

Every block is checked against its CID when read; blocks from outside are checked before they are written.
`set_mapsize` must not run while another thread has a transaction open, so one lock serialises access: reads
are short (one memcpy-free lookup and a hash), writes are batched by the caller.
"""

from __future__ import annotations

import errno
import os
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import lmdb

from consensus import codec
from storage.address import CID
from storage.errors import BlockNotFoundError, NotPinnedError, StorageError, StoreFullError
from storage.importer import Block

_T = TypeVar("_T")
# LMDB reports a short write (what a full disk produces mid-flush) as EIO, a refused one as ENOSPC/EFBIG/EDQUOT.
_WRITE_FAILURES = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO}
_WRITE_FAILURE_TEXT = tuple(os.strerror(code) for code in _WRITE_FAILURES)
INITIAL_MAP_SIZE = 64 << 20
MAX_MAP_SIZE = 1 << 40


@dataclass(frozen=True, slots=True)
class PinRecord:
    """A recursive pin: keep `root` and everything under it; `replication` is how many nodes should hold it."""

    root: CID
    replication: int = 1

    def encode(self) -> bytes:
        return codec.encode({"replication": self.replication})

    @classmethod
    def decode(cls, key: bytes, value: bytes) -> PinRecord:
        fields = codec.decode(value)
        if not isinstance(fields, dict) or not isinstance(fields.get("replication"), int):
            raise StorageError("corrupt pin record")
        replication = fields["replication"]
        assert isinstance(replication, int)
        return cls(CID.from_bytes(key), replication)


def _is_write_failure(exc: lmdb.Error) -> bool:
    return any(text in str(exc) for text in _WRITE_FAILURE_TEXT)


class Blockstore:
    """Blocks keyed by binary CID, and pin records; all methods are synchronous and thread-safe."""

    def __init__(
        self, directory: Path, initial_map_size: int = INITIAL_MAP_SIZE, max_map_size: int = MAX_MAP_SIZE
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._directory = directory
        self._max_map_size = max_map_size
        self._lock = threading.Lock()
        self._env = lmdb.open(str(directory), map_size=initial_map_size, max_dbs=4, subdir=True)
        self._blocks = self._env.open_db(b"blocks")
        self._pins = self._env.open_db(b"pins")

    def close(self) -> None:
        with self._lock:
            self._env.close()

    @property
    def map_size(self) -> int:
        return int(self._env.info()["map_size"])

    def _write(self, work: Callable[[Any], _T]) -> _T:
        """Run `work(txn)` in a write transaction, growing the map on `MapFullError`."""
        with self._lock:
            while True:
                try:
                    with self._env.begin(write=True) as txn:
                        return work(txn)
                except lmdb.MapFullError:
                    current = self.map_size
                    if current >= self._max_map_size:
                        raise StoreFullError(f"store reached its ceiling of {self._max_map_size} bytes") from None
                    self._env.set_mapsize(min(current * 2, self._max_map_size))
                except lmdb.Error as exc:
                    if _is_write_failure(exc):
                        free = shutil.disk_usage(self._directory).free
                        raise StoreFullError(
                            f"write not committed (disk full or I/O error; {free} bytes free): {exc}"
                        ) from exc
                    raise

    def put_many(self, blocks: Iterable[Block], trusted: bool = False, pin: PinRecord | None = None) -> int:
        """Store blocks (and optionally a pin, so an add's last commit and its pin are one fsync) in one
        transaction; unless `trusted` (we hashed them ourselves) each block is verified first.

        Returns the number of bytes newly written."""
        batch = list(blocks)
        if not trusted:
            for block in batch:
                block.cid.verify(block.data)

        def work(txn: Any) -> int:
            written = 0
            for block in batch:
                if txn.put(block.cid.to_bytes(), block.data, db=self._blocks, overwrite=False):
                    written += len(block.data)
            if pin is not None:
                txn.put(pin.root.to_bytes(), pin.encode(), db=self._pins)
            return written

        return self._write(work)

    def put(self, block: Block, trusted: bool = False) -> int:
        return self.put_many([block], trusted)

    def get(self, cid: CID) -> bytes:
        """The block's bytes, verified against `cid` (`BlockHashMismatchError` if the disk rotted)."""
        with self._lock, self._env.begin(buffers=False) as txn:
            data = txn.get(cid.to_bytes(), db=self._blocks)
        if data is None:
            raise BlockNotFoundError(f"block {cid} is not stored here")
        block = bytes(data)
        cid.verify(block)
        return block

    def has(self, cid: CID) -> bool:
        with self._lock, self._env.begin() as txn:
            return txn.get(cid.to_bytes(), db=self._blocks) is not None

    def delete_many(self, cids: Iterable[CID]) -> int:
        """Remove blocks; returns how many bytes were freed."""
        keys = [cid.to_bytes() for cid in cids]

        def work(txn: Any) -> int:
            freed = 0
            for key in keys:
                value = txn.pop(key, db=self._blocks)
                if value is not None:
                    freed += len(value)
            return freed

        return self._write(work)

    def iter_cids(self) -> Iterator[CID]:
        """Every stored block's CID (a snapshot taken at call time)."""
        with self._lock, self._env.begin() as txn:
            keys = [bytes(key) for key in txn.cursor(db=self._blocks).iternext(keys=True, values=False)]
        for key in keys:
            yield CID.from_bytes(key)

    def stats(self) -> tuple[int, int]:
        """(number of blocks, total block bytes)."""
        count = 0
        size = 0
        with self._lock, self._env.begin() as txn:
            for _, value in txn.cursor(db=self._blocks):
                count += 1
                size += len(value)
        return count, size

    def set_pin(self, pin: PinRecord) -> None:
        self._write(lambda txn: txn.put(pin.root.to_bytes(), pin.encode(), db=self._pins))

    def remove_pin(self, root: CID) -> None:
        if self._write(lambda txn: txn.delete(root.to_bytes(), db=self._pins)) is False:
            raise NotPinnedError(f"{root} is not pinned")

    def get_pin(self, root: CID) -> PinRecord | None:
        with self._lock, self._env.begin() as txn:
            value = txn.get(root.to_bytes(), db=self._pins)
        return None if value is None else PinRecord.decode(root.to_bytes(), bytes(value))

    def pins(self) -> list[PinRecord]:
        with self._lock, self._env.begin() as txn:
            return [PinRecord.decode(bytes(k), bytes(v)) for k, v in txn.cursor(db=self._pins)]
