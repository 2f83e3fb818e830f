"""Blocks and pin records under the node's data directory: an LMDB index, large blocks in pack files.

LMDB gives crash-safe transactions (a commit is atomic and fsynced), so a failed write leaves the store as it
was. Small blocks (dag-pb nodes, short tails) live in LMDB itself; blocks of `PACK_THRESHOLD` bytes or more
(UnixFS leaves), once a write holds at least `PACK_MIN_BATCH` bytes of them, are appended to pack files
(`storage/packs.py`) and LMDB records where they are.

Writes go through a `BlockWriter` (one per add; `put_many` is a writer used once). Its order is what keeps a
crash honest: large blocks are appended to a pack as they come, without a sync; `commit` then fdatasyncs the
packs it appended to, and only after that commits, in one LMDB transaction, the index entries, the small
blocks and the pin. So the index never points at bytes that are not durable, a pin is never durable before
its blocks, and an add costs one pack sync and one LMDB commit whatever its size (a writer checkpoints — sync
and commit without a pin — every `checkpoint_bytes`, which bounds the memory it holds for index entries). A
crash before the commit leaves only unreferenced pack bytes, which `compact` reclaims; packs a writer has
appended to but not yet indexed are never compacted under it.

Every LMDB commit syncs twice (data pages, then the meta page). On ext4 the first is a journal commit when the
data file grew, and roughly twice the cost of a sync of bytes over already written blocks: for small adds that
difference was most of the gap to the raw ceiling. So before a commit would grow the data file, the file is
extended with written zeros beyond LMDB's last page (`_ensure_slack`, a few times the commit's size, no
extra sync: LMDB's own sync carries it), and the next small commits overwrite blocks that already exist. LMDB
never reads past its last page, so the zeros are inert; a crash leaves them as unused file tail.

Two LMDB limits are handled here:
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
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import lmdb

from primitives import codec
from storage.address import CID
from storage.errors import BlockNotFoundError, NotPinnedError, StorageError, StoreFullError
from storage.importer import Block, Buffer
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
# A writer syncs and indexes what it has appended at least this often, so a huge add holds bounded memory.
CHECKPOINT_BYTES = 1 << 30
# Pre-extending the LMDB data file: by this many times the growth a commit needs, within these bounds.
SLACK_FACTOR = 8
MAX_SLACK = 64 << 20
_LMDB_COMMIT_OVERHEAD = 64 << 10  # branch pages, the freelist, pack-live counters: a generous bound
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
        checkpoint_bytes: int = CHECKPOINT_BYTES,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._directory = directory
        self._max_map_size = max_map_size
        self._pack_min_batch = pack_min_batch
        self._checkpoint_bytes = checkpoint_bytes
        self._lock = threading.RLock()
        self._env = lmdb.open(str(directory / "index"), map_size=initial_map_size, max_dbs=4, subdir=True)
        self._data_file = directory / "index" / "data.mdb"
        self._page_size = int(self._env.stat()["psize"])
        self._blocks = self._env.open_db(b"blocks")
        self._pins = self._env.open_db(b"pins")
        self._live = self._env.open_db(b"pack-live-bytes")
        self._packs = PackFiles(directory / "packs", max_pack_bytes)
        # Packs with bytes an open writer appended but has not indexed yet: `compact` must leave them alone.
        self._unindexed: Counter[int] = Counter()

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

    def writer(self) -> BlockWriter:
        """A writer for one add: `write` batches as they come, then `commit` (or `abort`)."""
        return BlockWriter(self, self._checkpoint_bytes)

    def put_many(self, blocks: Iterable[Block], trusted: bool = False, pin: PinRecord | None = None) -> int:
        """Store blocks (and optionally a pin, so an add's last commit and its pin are one transaction); unless
        `trusted` (we hashed them ourselves) each block is verified first. Returns the bytes newly stored."""
        batch = list(blocks)
        if not trusted:
            for block in batch:
                block.cid.verify(block.data)
        writer = self.writer()
        try:
            writer.write((block.cid, block.data) for block in batch)
            return writer.commit(pin)
        finally:
            writer.abort()  # a no-op after a commit; after a failure it releases the writer's packs

    def _ensure_slack(self, growth: int) -> None:
        """Keep written zeros past LMDB's last page so that a commit of about `growth` bytes does not grow the
        data file (see the module docstring). Called under the lock, outside any write transaction."""
        info = self._env.info()
        used = (int(info["last_pgno"]) + 1) * self._page_size
        needed = used + growth + _LMDB_COMMIT_OVERHEAD
        try:
            size = self._data_file.stat().st_size
        except FileNotFoundError:
            return
        if size >= needed:
            return
        slack = min(max(SLACK_FACTOR * (growth + _LMDB_COMMIT_OVERHEAD), used // 4), MAX_SLACK)
        target = min(max(used + slack, needed), int(info["map_size"]))
        target += -target % self._page_size
        if target <= size:
            return
        zeros = bytes(1 << 20)
        fd = os.open(self._data_file, os.O_WRONLY)
        try:
            offset = size
            while offset < target:
                offset += os.pwrite(fd, zeros[: target - offset], offset)
        except OSError:
            # No room for the slack: give it back and let LMDB's own write meet (and report) the full disk.
            os.ftruncate(fd, size)
        finally:
            os.close(fd)

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
        pack bytes reclaimed. Call after GC.

        The pack being appended to is included once no open writer has unindexed bytes in it: its tail past
        the last indexed block (what an add killed or abandoned mid-way left) is cut off, and if it is still
        mostly garbage it is closed and rewritten like any other. Without this, the garbage of an interrupted
        add stayed on disk until the pack reached its 1 GiB rotation size."""
        with self._lock:
            reclaimed = self._trim_current_pack()
            live = self._live_bytes()
            current = self._packs.current
            size = self._packs.size(current)
            if not self._unindexed[current] and size and (size - live.get(current, 0)) / size > max_garbage_ratio:
                self._packs.rotate()
            for pack_id in self._packs.ids():
                if pack_id == self._packs.current or self._unindexed[pack_id]:
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

    def _live_bytes(self) -> dict[int, int]:
        with self._env.begin() as txn:
            return {_LIVE.unpack(k)[0]: _LIVE.unpack(v)[0] for k, v in txn.cursor(db=self._live)}

    def _trim_current_pack(self) -> int:
        """Truncate the newest pack after its last indexed block, unless a writer is appending to it. Appends
        only ever go to the end and are indexed after they are synced, so nothing past that point is named by
        the index. Returns the bytes cut."""
        current = self._packs.current
        size = self._packs.size(current)
        if self._unindexed[current] or size == self._live_bytes().get(current, 0):
            return 0
        end = 0
        with self._env.begin(buffers=True) as txn:
            for value in txn.cursor(db=self._blocks).iternext(keys=False, values=True):
                if bytes(value[:1]) == _PACKED:
                    pack_id, offset, length = _LOCATION.unpack_from(value, 1)
                    if pack_id == current:
                        end = max(end, offset + length)
        if end >= size:
            return 0
        self._packs.truncate_current(end)
        return size - end

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


class BlockWriter:
    """One add's blocks on their way into a `Blockstore` (order of writes: see the module docstring).

    `write` may be called from a worker thread while the caller prepares the next batch; every call takes the
    store's lock. Blocks already stored, or already written by this writer, are skipped (stored once)."""

    def __init__(self, store: Blockstore, checkpoint_bytes: int) -> None:
        self._store = store
        self._checkpoint_bytes = checkpoint_bytes
        self._held: dict[bytes, Buffer] = {}  # binary CID -> bytes for LMDB (small blocks, and large ones
        self._held_large = 0  # while fewer than `pack_min_batch` bytes of them came: a small file stays inline)
        self._to_packs = False
        self._located: dict[bytes, tuple[int, int, int]] = {}  # appended, not yet indexed: pack, offset, length
        self._packs: set[int] = set()  # packs holding `_located` bytes (marked unindexed in the store)
        self._appended = 0  # bytes appended since the last commit
        self._stored = 0
        self._open = True

    def write(self, blocks: Iterable[tuple[CID, Buffer]]) -> None:
        store = self._store
        with store._lock:
            self._check_open()
            fresh: dict[bytes, Buffer] = {}
            with store._env.begin() as txn:
                for cid, data in blocks:
                    key = cid.to_bytes()
                    if key in fresh or key in self._held or key in self._located:
                        continue
                    if txn.get(key, db=store._blocks) is None:
                        fresh[key] = data
            large: list[tuple[bytes, Buffer]] = []
            for key, data in fresh.items():
                if len(data) < PACK_THRESHOLD:
                    self._held[key] = data
                elif self._to_packs:
                    large.append((key, data))
                else:
                    self._held[key] = data
                    self._held_large += len(data)
            if not self._to_packs and self._held_large >= store._pack_min_batch and self._held_large:
                # Enough bulk data to pay for a pack sync: from now on large blocks go straight to the pack.
                self._to_packs = True
                large = [(k, d) for k, d in self._held.items() if len(d) >= PACK_THRESHOLD] + large
                for key, _ in large:
                    self._held.pop(key, None)
                self._held_large = 0
            if large:
                self._append(large)
            if self._appended >= self._checkpoint_bytes:
                self._commit(None)

    def _append(self, large: list[tuple[bytes, Buffer]]) -> None:
        store = self._store
        locations = store._packs.append([data for _, data in large])
        for (key, data), (pack_id, offset) in zip(large, locations, strict=True):
            self._located[key] = (pack_id, offset, len(data))
            if pack_id not in self._packs:
                self._packs.add(pack_id)
                store._unindexed[pack_id] += 1
            self._appended += len(data)

    def commit(self, pin: PinRecord | None = None) -> int:
        """Make everything written durable and indexed, with `pin` in the same transaction; returns the bytes
        newly stored. The writer is closed afterwards."""
        with self._store._lock:
            self._check_open()
            try:
                self._commit(pin)
            finally:
                self.abort()
            return self._stored

    def _commit(self, pin: PinRecord | None) -> None:
        store = self._store
        for pack_id in sorted(self._packs):
            store._packs.sync(pack_id)  # the pack bytes are durable before any index entry names them
        inline = {key: _INLINE + data for key, data in self._held.items()}
        located = self._located

        def work(txn: Any) -> int:
            stored = 0
            added_live: dict[int, int] = {}
            for key, value in inline.items():
                if txn.get(key, db=store._blocks) is None:
                    txn.put(key, value, db=store._blocks)
                    stored += len(value) - 1
            for key, (pack_id, offset, length) in located.items():
                # Another writer may have stored the same block since `write` looked: keep its copy (ours
                # becomes pack garbage), so a block is counted live once.
                if txn.get(key, db=store._blocks) is None:
                    txn.put(key, _PACKED + _LOCATION.pack(pack_id, offset, length), db=store._blocks)
                    added_live[pack_id] = added_live.get(pack_id, 0) + length
                    stored += length
            store._adjust_live(txn, added_live)
            if pin is not None:
                txn.put(pin.root.to_bytes(), pin.encode(), db=store._pins)
            return stored

        store._ensure_slack(sum(len(value) for value in inline.values()) + 64 * len(located))
        self._stored += store._write(work)
        self._held.clear()
        self._held_large = 0
        self._located = {}
        self._appended = 0
        self._release_packs()

    def abort(self) -> None:
        """Give up what was not committed (its pack bytes become garbage for `compact`); idempotent."""
        with self._store._lock:
            self._open = False
            self._held.clear()
            self._located = {}
            self._release_packs()

    def _release_packs(self) -> None:
        for pack_id in self._packs:
            self._store._unindexed[pack_id] -= 1
            if self._store._unindexed[pack_id] <= 0:
                del self._store._unindexed[pack_id]
        self._packs.clear()

    def _check_open(self) -> None:
        if not self._open:
            raise StorageError("block writer already committed or aborted")
