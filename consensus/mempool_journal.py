"""The mempool journal: the node's pending transactions on disk, so an acknowledged transaction survives a crash.

`POST /tx` answers only once the transactions it accepted are written here and fsynced (docs/API.md, "What an
acknowledgement promises"). At start-up `reload` puts the journal back into a fresh mempool and the node gossips
those transactions again; without it a transaction acknowledged in the ~0.2 s before its node was killed — before
the next gossip batch left — was gone for good (nothing else held it).

The journal mirrors the mempool: an entry is written when the pool admits a transaction and deleted when the pool
drops it (included in a final block, or its nonce used by another). Deletes need no hurry: an entry whose
transaction became final before its delete reached the disk is recognised and dropped at reload.

Layout: one LMDB environment of its own (its fsyncs do not hold up the chain store's), one database, key = the
transaction hash (32 bytes), value = an 8-byte big-endian arrival number followed by the transaction's canonical
bytes. The arrival number restores the pool's reap order; the key lets a delete find the entry without a scan and
makes a repeated write of one transaction a no-op. Writes are batched by the caller (node/ledger/group_commit.py): one
LMDB transaction — one fsync — per batch, whatever the number of transactions in it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import lmdb

from consensus.errors import StoreError, TxError
from consensus.mempool import Mempool
from consensus.tx import Tx, decode_tx

log = logging.getLogger(__name__)

_SEQ_BYTES = 8
_HASH_BYTES = 32


class JournalError(StoreError):
    """A journal write failed: the transactions of that batch are not known to be on disk."""


@dataclass(frozen=True)
class JournalEntry:
    tx_hash: bytes
    seq: int  # arrival number: reload admits entries in this order
    raw: bytes


class MempoolJournal:
    """Pending transactions in LMDB. Thread-safe: writes run off the event loop (one at a time)."""

    def __init__(self, path: Path, *, initial_map_size: int = 64 * 1024 * 1024) -> None:
        self.path = Path(path)
        # Set when the journal on disk could not be opened and was moved aside (see `_open`): what it held is lost.
        self.quarantined: Path | None = None
        self._lock = threading.Lock()
        self._env = self._open(initial_map_size)
        self._next_seq = self._last_seq() + 1

    def _open(self, map_size: int) -> lmdb.Environment:
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            return lmdb.open(str(self.path), map_size=map_size, subdir=True, sync=True, metasync=True)
        except (lmdb.InvalidError, lmdb.CorruptedError, lmdb.VersionMismatchError) as exc:
            # An unreadable file must not keep the node (and its chain) from starting. Keep it for inspection and
            # start empty; the loss is logged loudly — it is the one case where acknowledged transactions go.
            aside = self.path.with_name(f"{self.path.name}.unreadable-{time.strftime('%Y%m%dT%H%M%S')}")
            self.path.rename(aside)
            self.quarantined = aside
            log.error("mempool journal %s is unreadable (%s); moved to %s, starting empty", self.path, exc, aside)
            self.path.mkdir(parents=True)
            return lmdb.open(str(self.path), map_size=map_size, subdir=True, sync=True, metasync=True)

    def close(self) -> None:
        with self._lock:  # waits for a write in progress on another thread
            self._env.close()

    def _last_seq(self) -> int:
        last = 0
        with self._env.begin() as txn:
            for value in txn.cursor().iternext(keys=False, values=True):
                if len(value) >= _SEQ_BYTES:
                    last = max(last, int.from_bytes(value[:_SEQ_BYTES], "big"))
        return last

    def __len__(self) -> int:
        with self._env.begin() as txn:
            return int(txn.stat()["entries"])

    def entries(self) -> tuple[list[JournalEntry], list[bytes]]:
        """Every well-formed entry in arrival order, and the keys of malformed ones (a value too short to hold an
        arrival number, or bytes whose hash is not their key: damaged on disk or written by something else)."""
        good: list[JournalEntry] = []
        bad: list[bytes] = []
        with self._env.begin() as txn:
            for key, value in txn.cursor():
                key, value = bytes(key), bytes(value)
                raw = value[_SEQ_BYTES:]
                if len(key) != _HASH_BYTES or len(value) <= _SEQ_BYTES or hashlib.sha256(raw).digest() != key:
                    bad.append(key)
                    continue
                good.append(JournalEntry(key, int.from_bytes(value[:_SEQ_BYTES], "big"), raw))
        good.sort(key=lambda entry: entry.seq)
        return good, bad

    def write(self, puts: Sequence[tuple[bytes, bytes]], deletes: Iterable[bytes]) -> None:
        """Store `puts` ((tx hash, raw) in arrival order) and remove `deletes`, in one fsynced LMDB transaction.

        A hash already stored keeps its first arrival number. Raises JournalError if nothing could be written."""
        deletes = list(deletes)
        with self._lock:
            while True:
                seq = self._next_seq
                try:
                    with self._env.begin(write=True) as txn:
                        for tx_hash, raw in puts:
                            if txn.put(tx_hash, seq.to_bytes(_SEQ_BYTES, "big") + raw, overwrite=False):
                                seq += 1
                        for tx_hash in deletes:
                            txn.delete(tx_hash)
                except lmdb.MapFullError:
                    # Aborted as a whole: grow the map (fixed until resized) and write the batch again.
                    self._env.set_mapsize(self._env.info()["map_size"] * 2)
                    continue
                except (lmdb.Error, OSError) as exc:
                    raise JournalError(f"{self.path}: mempool journal write failed: {exc}") from exc
                self._next_seq = seq
                return


@dataclass
class ReloadReport:
    """What `reload` did with each journal entry."""

    restored: list[Tx] = field(default_factory=list)  # back in the pool, in arrival order: gossip them again
    final: int = 0  # already in a final block (its delete had not reached the disk)
    refused: int = 0  # no longer admissible: nonce used by another transaction, pool full, rules changed
    malformed: int = 0  # damaged bytes: not a transaction of this chain any more

    @property
    def dropped(self) -> int:
        return self.final + self.refused + self.malformed


def reload(journal: MempoolJournal, mempool: Mempool, is_final: Callable[[bytes], bool]) -> ReloadReport:
    """Admit the journal's transactions into `mempool` (which should not write to the journal meanwhile) in arrival
    order, with the pool's full checks against the committed state; delete every entry that is not admitted.

    A transaction whose predecessor (by nonce) is not in the journal waits in the pool as queued, exactly as it did
    before the restart, until the missing nonce arrives."""
    report = ReloadReport()
    entries, malformed = journal.entries()
    drop = list(malformed)
    report.malformed = len(malformed)
    for entry in entries:
        if is_final(entry.tx_hash):
            report.final += 1
            drop.append(entry.tx_hash)
            continue
        try:
            tx = decode_tx(entry.raw, chain_id=mempool.chain_id, max_bytes=mempool.params.max_tx_bytes)
        except TxError as exc:
            log.warning("mempool journal: dropping an entry that does not decode: %s", exc)
            report.malformed += 1
            drop.append(entry.tx_hash)
            continue
        try:
            mempool.add(tx)
        except TxError as exc:
            log.info("mempool journal: dropping %s: %s", entry.tx_hash.hex()[:16], exc)
            report.refused += 1
            drop.append(entry.tx_hash)
            continue
        report.restored.append(tx)
    if drop:
        journal.write((), drop)
    return report
