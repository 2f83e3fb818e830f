"""Group commit for the mempool journal: many submissions, one fsync.

The mempool tells this writer of every admission and removal (it is the pool's `journal` observer); nothing is
written on the event loop. One background task takes whatever has gathered, writes it in one LMDB transaction on a
worker thread (one fsync), and while that fsync runs, new changes gather for the next batch: the group commit of
database logs (Gray & Reuter, "Transaction Processing: Concepts and Techniques"; PostgreSQL's WAL writer). A
submitter that must not answer before its transactions are on disk awaits `durable()`, which returns once every
admission made before the call has been written. So the cost is one fsync per batch, not per transaction, and a
client waits at most about two fsyncs. Changes no one waits for (transactions from gossip, removals after a block)
wait up to `background_delay_s` for company, so the journal adds a few fsyncs a second, not one per gossip batch.

A failed write (disk full, I/O error) fails the waiters whose admissions were in it — their answer says the
transactions are not known to be durable — and the batch is kept and tried again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

from consensus.mempool import Mempool
from consensus.mempool_journal import JournalError, MempoolJournal, reload
from consensus.tx import Tx

log = logging.getLogger(__name__)


class JournalWriter:
    """The mempool's journal observer: buffers changes, writes them in batches, tells waiters when they are on disk."""

    retry_s = 1.0  # pause before writing a failed batch again
    # Changes nobody waits for (transactions from gossip, removals after a block) gather this long before they are
    # written, so the journal's fsyncs do not crowd the chain store's on the same disk; a submitter ends the wait.
    background_delay_s = 0.1

    def __init__(self, journal: MempoolJournal) -> None:
        self.journal = journal
        # Pending changes, disjoint: a hash is either to be written or to be deleted (the later change wins).
        self._puts: dict[bytes, bytes] = {}  # insertion order = arrival order
        self._deletes: set[bytes] = set()
        self._admitted = 0  # admissions so far (a counter: `durable` waits for the count at its call)
        self._written = 0  # admissions known to be on disk
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._urgent = asyncio.Event()  # someone waits for durability
        self.batches = 0  # fsynced batches written (for tests and figures)

    # ---- the mempool's observer ---------------------------------------------------------------------------

    def added(self, tx: Tx) -> None:
        self._deletes.discard(tx.hash)
        self._puts[tx.hash] = tx.raw
        self._admitted += 1
        self._wake.set()

    def removed(self, tx_hash: bytes) -> None:
        self._puts.pop(tx_hash, None)
        self._deletes.add(tx_hash)
        self._wake.set()

    # ---- waiting for durability ---------------------------------------------------------------------------

    async def durable(self) -> None:
        """Return once every admission made before this call is on disk. Raises JournalError if the write that
        carried one of them failed."""
        target = self._admitted
        if self._written >= target:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((target, future))
        self._urgent.set()
        await future

    def _settle(self, upto: int, error: JournalError | None) -> None:
        keep = []
        for target, future in self._waiters:
            if target > upto:
                keep.append((target, future))
            elif not future.done():  # a waiter cancelled meanwhile (its client went away) needs nothing
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)
        self._waiters = keep

    # ---- the writer task ----------------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            if not self._waiters:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._urgent.wait(), timeout=self.background_delay_s)
            self._wake.clear()
            self._urgent.clear()
            if not self._puts and not self._deletes:
                continue
            puts, deletes, upto = self._take()
            try:
                await asyncio.to_thread(self.journal.write, puts, deletes)
            except JournalError as exc:
                log.error("%s (%d transactions wait for the next attempt)", exc, len(puts))
                self._give_back(puts, deletes)
                self._settle(upto, exc)
                await asyncio.sleep(self.retry_s)
                self._wake.set()
                continue
            self.batches += 1
            self._written = upto
            self._settle(upto, None)

    def close(self) -> None:
        """At shutdown, after `run` has ended: write what is pending, on this thread, and close the journal."""
        if self._puts or self._deletes:
            puts, deletes, upto = self._take()
            try:
                self.journal.write(puts, deletes)
                self._settle(upto, None)
            except JournalError as exc:
                log.error("mempool journal not flushed at shutdown: %s", exc)
        self.journal.close()

    def _take(self) -> tuple[list[tuple[bytes, bytes]], list[bytes], int]:
        puts, deletes = list(self._puts.items()), list(self._deletes)
        self._puts, self._deletes = {}, set()
        return puts, deletes, self._admitted

    def _give_back(self, puts: list[tuple[bytes, bytes]], deletes: list[bytes]) -> None:
        # Changes made since the batch was taken are newer and win; the failed batch's puts go first (older).
        older = {tx_hash: raw for tx_hash, raw in puts if tx_hash not in self._deletes}
        self._puts = {**older, **self._puts}
        self._deletes |= {tx_hash for tx_hash in deletes if tx_hash not in self._puts}


def open_mempool_journal(
    path: Path, mempool: Mempool, is_final: Callable[[bytes], bool]
) -> tuple[JournalWriter, list[Tx]]:
    """Open the journal at `path`, refill the fresh `mempool` from it, and make the writer the pool's observer
    from then on. Returns the writer and the transactions restored (in arrival order: to be gossiped again, as
    peers may never have received them)."""
    journal = MempoolJournal(path)
    report = reload(journal, mempool, is_final)
    writer = JournalWriter(journal)
    mempool.journal = writer
    if report.restored or report.dropped:
        log.info(
            "mempool reloaded from %s: %d transactions back, %d dropped (%d final, %d refused, %d malformed)",
            path,
            len(report.restored),
            report.dropped,
            report.final,
            report.refused,
            report.malformed,
        )
    return writer, report.restored
