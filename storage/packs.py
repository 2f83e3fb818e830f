"""Append-only pack files for large blocks (UnixFS leaves), indexed by the blockstore's LMDB.

LMDB copies every value into its own dirty pages and syncs twice per commit; for 256 KiB leaves that made
adds about twice as slow as writing the bytes to a file (bench/store_throughput.py). Large blocks therefore go
to append-only files: `append` writes a batch with no sync (it only starts the batch's writeback), and `sync`
is one `fdatasync` before the blockstore commits the 17-byte locations of what was appended to LMDB — so an
add pays one data sync however many batches it wrote. A crash before that commit leaves unreferenced bytes in
a pack, which compaction reclaims. A failed append (disk full) truncates the pack back to its previous length.
A pack that is closed for a new one is synced first, so `sync` only ever has the newest pack to flush.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from storage.errors import StorageError, StoreFullError
from storage.importer import Buffer

MAX_PACK_BYTES = 1 << 30
_SYNC_FILE_RANGE_WRITE = 2  # linux/fs.h: start writeback of the range's dirty pages, do not wait for it


def _writeback_starter() -> Callable[[int, int, int], None]:
    """`sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE)` where libc has it, else a no-op.

    Only a hint (durability is still `fdatasync`'s job): the disk starts writing a batch while the next one is
    cut and hashed, so the sync that ends an add waits for the last batch rather than the whole file. Without
    it, that one sync of a 100 MB add was a quarter of the add's time."""
    try:
        call = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return lambda fd, offset, length: None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int

    def start(fd: int, offset: int, length: int) -> None:
        call(fd, offset, length, _SYNC_FILE_RANGE_WRITE)  # a failure only means no head start

    return start


_start_writeback = _writeback_starter()


class PackFiles:
    """Numbered files `<n>.pack` under one directory; appends go to the newest. Not thread-safe on its own:
    the blockstore serialises access."""

    def __init__(self, directory: Path, max_pack_bytes: int = MAX_PACK_BYTES) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._directory = directory
        self._max_pack_bytes = max_pack_bytes
        self._readers: dict[int, int] = {}
        existing = self.ids()
        self.current = existing[-1] if existing else 0
        self._writer = os.open(self._path(self.current), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._size = os.fstat(self._writer).st_size

    def _path(self, pack_id: int) -> Path:
        return self._directory / f"{pack_id:08d}.pack"

    def ids(self) -> list[int]:
        return sorted(int(p.stem) for p in self._directory.glob("*.pack") if p.stem.isdigit())

    def size(self, pack_id: int) -> int:
        return self._size if pack_id == self.current else self._path(pack_id).stat().st_size

    def close(self) -> None:
        os.close(self._writer)
        for fd in self._readers.values():
            os.close(fd)
        self._readers.clear()

    def rotate(self) -> None:
        """Start a new pack; the one written so far becomes an ordinary closed pack (compaction may rewrite it).
        Appends to it may not be synced yet (their index commit comes later): flush before closing."""
        self._fdatasync()
        os.close(self._writer)
        self.current += 1
        self._writer = os.open(self._path(self.current), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._size = 0

    def append(self, chunks: Sequence[Buffer]) -> list[tuple[int, int]]:
        """Write `chunks` (not yet durable: see `sync`); returns (pack id, offset) of each."""
        if not chunks:
            return []
        if self._size and self._size + sum(len(c) for c in chunks) > self._max_pack_bytes:
            self.rotate()
        start = self._size
        locations: list[tuple[int, int]] = []
        offset = start
        for chunk in chunks:
            locations.append((self.current, offset))
            offset += len(chunk)
        try:
            self._write_all(chunks)
        except OSError as exc:
            os.ftruncate(self._writer, start)  # leave no half-written tail behind
            self._size = start
            raise _failure("pack write", exc, self._directory) from exc
        self._size = offset
        _start_writeback(self._writer, start, offset - start)
        return locations

    def sync(self, pack_id: int) -> None:
        """Make everything appended to `pack_id` durable (a pack other than the newest was synced when closed)."""
        if pack_id == self.current:
            self._fdatasync()

    def _fdatasync(self) -> None:
        try:
            os.fdatasync(self._writer)
        except OSError as exc:
            # The kernel may have dropped the unwritten pages: whatever was appended since the last sync is lost,
            # and the caller must not index it (it raises before its LMDB commit).
            raise _failure("pack sync", exc, self._directory) from exc

    def _write_all(self, buffers: Sequence[Buffer]) -> None:
        # One write per block, not one writev per batch: with a single multi-MiB write the kernel fills the page
        # cache with large folios, which measured 4-8 times the CPU of block-sized writes on this VM (and the
        # syscalls saved are a few hundred per 100 MB).
        for buffer in buffers:
            view = memoryview(buffer)
            while view:
                view = view[os.write(self._writer, view) :]

    def read(self, pack_id: int, offset: int, length: int) -> bytes:
        fd = self._readers.get(pack_id)
        if fd is None:
            try:
                fd = os.open(self._path(pack_id), os.O_RDONLY)
            except FileNotFoundError as exc:
                raise StorageError(f"pack {pack_id} is missing") from exc
            self._readers[pack_id] = fd
        data = os.pread(fd, length, offset)
        if len(data) != length:
            raise StorageError(f"pack {pack_id} is shorter than its index says")
        return data

    def truncate_current(self, length: int) -> None:
        """Cut the newest pack back to `length` bytes: its tail past the last indexed block is what an
        interrupted write (a crash, an abandoned add) left, and appends would otherwise only ever go after it."""
        if not 0 <= length <= self._size:
            raise ValueError(f"cannot truncate a pack of {self._size} bytes to {length}")
        try:
            os.ftruncate(self._writer, length)
        except OSError as exc:
            raise _failure("pack truncate", exc, self._directory) from exc
        self._size = length

    def remove(self, pack_id: int) -> None:
        """Delete a pack no block refers to any more (never the one being appended to)."""
        if pack_id == self.current:
            raise ValueError("cannot remove the pack being written")
        fd = self._readers.pop(pack_id, None)
        if fd is not None:
            os.close(fd)
        self._path(pack_id).unlink(missing_ok=True)


def _failure(what: str, exc: OSError, directory: Path) -> StorageError:
    if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO):
        return StoreFullError(f"{what} not committed (disk full; {_free_bytes(directory)} bytes free): {exc}")
    return StorageError(f"{what} failed: {exc}")


def _free_bytes(directory: Path) -> int:
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize
