"""Blocks and pin records under the node's data directory: an LMDB index, large blocks in pack files.

LMDB gives crash-safe transactions (a commit is atomic and fsynced), so a failed write leaves the store as it
was. Small blocks (dag-pb nodes, short tails) live in LMDB itself; blocks of `PACK_THRESHOLD` bytes or more
(UnixFS leaves), when a batch holds at least `PACK_MIN_BATCH` bytes of them, are appended to pack files
(`storage/packs.py`) and LMDB records where they are. Per batch: append the large blocks and fdatasync, then
commit the index — so the index never points at bytes that are
not durable. Two LMDB limits are handled here:
- the memory map has a fixed size: on `MapFullError` the transaction is aborted, the map doubled (up to
  `max_map_size`) and the transaction retried, so callers never see it;
- a full disk (ENOSPC, EFBIG/EDQUOT under quotas, EIO for a short write) becomes `StoreFullError`; nothing of
  the failed batch is committed and earlier commits are untouched.

Every block is checked against its CID when read; blocks from outside are checked before they are written.
One re-entrant lock serialises access (`set_mapsize` must not run while another thread holds a transaction).
Deleting blocks lowers their pack's live-byte count; `compact` deletes packs nobody uses and rewrites mostly
empty ones.
"""

from __future__ import annotations

import errno
import os
import shutil
import struct
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
from storage.packs import MAX_PACK_BYTES, PackFiles

_T = TypeVar("_T")
_WRITE_FAILURES = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO}
_WRITE_FAILURE_TEXT = tuple(os.strerror(code) for code in _WRITE_FAILURES)
INITIAL_MAP_SIZE = 64 << 20
MAX_MAP_SIZE = 1 << 40
PACK_THRESHOLD = 16 << 10
# A pack append costs its own fdatasync on top of LMDB's two syncs, which only pays off for bulk data: a batch
# with less than this many bytes of large blocks (a small file) keeps them inside LMDB (one commit).
PACK_MIN_BATCH = 2 << 20
_INLINE = b"\x00"
_PACKED = b"\x01"
_LOCATION = struct.Struct(">IQI")  # pack id, offset, length
_LIVE = struct.Struct(">Q")


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
        replication = fields.get("replication") if isinstance(fields, dict) else None
        if not isinstance(replication, int):
            raise StorageError("corrupt pin record")
        return cls(CID.from_bytes(key), replication)


def _is_write_failure(exc: lmdb.Error) -> bool:
    return any(text in str(exc) for text in _WRITE_FAILURE_TEXT)


def _stored_size(value: bytes) -> int:
    return len(value) - 1 if value[:1] == _INLINE else _LOCATION.unpack_from(value, 1)[2]


class Blockstore:
    """Blocks keyed by binary CID, and pin records; all methods are synchronous and thread-safe."""

    def __init__(
        self,
        directory: Path,
        initial_map_size: int = INITIAL_MAP_SIZE,
        max_map_size: int = MAX_MAP_SIZE,
        max_pack_bytes: int = MAX_PACK_BYTES,
        pack_min_batch: int = PACK_MIN_BATCH,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._directory = directory
        self._max_map_size = max_map_size
        self._pack_min_batch = pack_min_batch
        self._lock = threading.RLock()
        self._env = lmdb.open(str(directory / "index"), map_size=initial_map_size, max_dbs=4, subdir=True)
        self._blocks = self._env.open_db(b"blocks")
        self._pins = self._env.open_db(b"pins")
        self._live = self._env.open_db(b"pack-live-bytes")
        self._packs = PackFiles(directory / "packs", max_pack_bytes)

    def close(self) -> None:
        with self._lock:
            self._packs.close()
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
        """Store blocks (and optionally a pin, so an add's last commit and its pin are one transaction); unless
        `trusted` (we hashed them ourselves) each block is verified first. Returns the bytes newly stored."""
        batch = list(blocks)
        if not trusted:
            for block in batch:
                block.cid.verify(block.data)
        with self._lock:
            with self._env.begin() as txn:
                fresh = list({b.cid: b for b in batch if txn.get(b.cid.to_bytes(), db=self._blocks) is None}.values())
            large = [b for b in fresh if len(b.data) >= PACK_THRESHOLD]
            if sum(len(b.data) for b in large) < self._pack_min_batch:
                large = []
            locations = self._packs.append([b.data for b in large])
            packed = {b.cid for b in large}
            entries = {b.cid.to_bytes(): _INLINE + b.data for b in fresh if b.cid not in packed}
            added_live: dict[int, int] = {}
            for block, (pack_id, offset) in zip(large, locations, strict=True):
                entries[block.cid.to_bytes()] = _PACKED + _LOCATION.pack(pack_id, offset, len(block.data))
                added_live[pack_id] = added_live.get(pack_id, 0) + len(block.data)

            def work(txn: Any) -> int:
                for key, value in entries.items():
                    txn.put(key, value, db=self._blocks)
                self._adjust_live(txn, added_live)
                if pin is not None:
                    txn.put(pin.root.to_bytes(), pin.encode(), db=self._pins)
                return sum(len(b.data) for b in fresh)

            return self._write(work)

    def _adjust_live(self, txn: Any, deltas: dict[int, int]) -> None:
        for pack_id, delta in deltas.items():
            key = _LIVE.pack(pack_id)
            current = txn.get(key, db=self._live)
            live = (_LIVE.unpack(current)[0] if current is not None else 0) + delta
            txn.put(key, _LIVE.pack(max(live, 0)), db=self._live)

    def put(self, block: Block, trusted: bool = False) -> int:
        return self.put_many([block], trusted)

    def _load(self, cid: CID) -> bytes | None:
        with self._lock:
            with self._env.begin(buffers=True) as txn:
                # A buffer into the map, valid only inside the transaction: copy once, skipping the tag byte.
                value = txn.get(cid.to_bytes(), db=self._blocks)
                if value is None:
                    return None
                if bytes(value[:1]) == _INLINE:
                    return bytes(value[1:])
                pack_id, offset, length = _LOCATION.unpack_from(value, 1)
            return self._packs.read(pack_id, offset, length)

    def get(self, cid: CID) -> bytes:
        """The block's bytes, verified against `cid` (`BlockHashMismatchError` if the disk rotted)."""
        block = self._load(cid)
        if block is None:
            raise BlockNotFoundError(f"block {cid} is not stored here")
        cid.verify(block)
        return block

    def has(self, cid: CID) -> bool:
        with self._lock, self._env.begin() as txn:
            return txn.get(cid.to_bytes(), db=self._blocks) is not None

    def delete_many(self, cids: Iterable[CID]) -> int:
        """Remove blocks; returns how many bytes were freed (pack space returns at `compact`)."""
        keys = [cid.to_bytes() for cid in cids]

        def work(txn: Any) -> int:
            freed = 0
            dropped: dict[int, int] = {}
            for key in keys:
                value = txn.pop(key, db=self._blocks)
                if value is None:
                    continue
                freed += _stored_size(value)
                if value[:1] == _PACKED:
                    pack_id, _, length = _LOCATION.unpack_from(value, 1)
                    dropped[pack_id] = dropped.get(pack_id, 0) - length
            self._adjust_live(txn, dropped)
            return freed

        return self._write(work)

    def compact(self, max_garbage_ratio: float = 0.5) -> int:
        """Delete packs with no live block and rewrite those more than `max_garbage_ratio` garbage; returns the
        pack bytes reclaimed. Call after GC."""
        with self._lock:
            with self._env.begin() as txn:
                live = {_LIVE.unpack(k)[0]: _LIVE.unpack(v)[0] for k, v in txn.cursor(db=self._live)}
            reclaimed = 0
            for pack_id in self._packs.ids():
                if pack_id == self._packs.current:
                    continue
                size = self._packs.size(pack_id)
                in_use = live.get(pack_id, 0)
                if in_use and size and (size - in_use) / size <= max_garbage_ratio:
                    continue
                if in_use:
                    self._move_out_of(pack_id)
                self._forget_pack(pack_id)
                reclaimed += size - in_use
            return reclaimed

    def _forget_pack(self, pack_id: int) -> None:
        key = _LIVE.pack(pack_id)
        self._write(lambda txn: txn.delete(key, db=self._live))
        self._packs.remove(pack_id)

    def _move_out_of(self, pack_id: int) -> None:
        moved: list[Block] = []
        with self._env.begin() as txn:
            for key, value in txn.cursor(db=self._blocks):
                if bytes(value[:1]) == _PACKED and _LOCATION.unpack_from(value, 1)[0] == pack_id:
                    moved.append(Block(CID.from_bytes(bytes(key)), b""))
        blocks = [Block(b.cid, self.get(b.cid)) for b in moved]
        self.delete_many(b.cid for b in blocks)
        self.put_many(blocks, trusted=True)

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
                size += _stored_size(bytes(value))
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
