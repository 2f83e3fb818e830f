"""Group commit of the mempool journal (real LMDB): waiters share fsyncs, a failed write fails its waiters only."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

from consensus.genesis import Params
from consensus.mempool import Mempool
from consensus.mempool_journal import JournalError, MempoolJournal
from consensus.system_txs import default_registry
from node.ledger.group_commit import JournalWriter, open_mempool_journal
from tests.consensus.ledger_helpers import CHAIN_ID, USER_KEYS, record
from tests.harness import await_until


def stored(journal: MempoolJournal) -> list[bytes]:
    return [entry.tx_hash for entry in journal.entries()[0]]


def new_pool() -> Mempool:
    return Mempool(chain_id=CHAIN_ID, params=Params(), registry=default_registry(), nonce_of=lambda a: 0)


async def test_concurrent_submissions_share_one_fsync_and_wait_for_it(tmp_path: Path) -> None:
    journal = MempoolJournal(tmp_path / "mempool")
    writer = JournalWriter(journal)
    txs = [record(USER_KEYS[n % 8], n // 8) for n in range(40)]
    for tx in txs:
        writer.added(tx)
    waiters = [asyncio.create_task(writer.durable()) for _ in range(10)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)  # nothing is on disk yet: nobody may be answered
    task = asyncio.create_task(writer.run())
    try:
        await asyncio.wait_for(asyncio.gather(*waiters), timeout=10)
        assert writer.batches == 1
        assert stored(journal) == [tx.hash for tx in txs]
        # Nothing new admitted: durable() returns at once, without another write.
        await asyncio.wait_for(writer.durable(), timeout=1)
        assert writer.batches == 1
    finally:
        task.cancel()
    journal.close()


async def test_a_removal_before_the_write_is_never_written_and_one_after_is_deleted(tmp_path: Path) -> None:
    journal = MempoolJournal(tmp_path / "mempool")
    writer = JournalWriter(journal)
    kept, gone, later = record(USER_KEYS[0], 0), record(USER_KEYS[1], 0), record(USER_KEYS[2], 0)
    task = asyncio.create_task(writer.run())
    try:
        writer.added(kept)
        writer.added(gone)
        writer.removed(gone.hash)
        await asyncio.wait_for(writer.durable(), timeout=10)
        assert stored(journal) == [kept.hash]
        writer.added(later)
        await asyncio.wait_for(writer.durable(), timeout=10)
        writer.removed(kept.hash)
        await await_until(lambda: stored(journal) == [later.hash], timeout_s=10, what="the delete written")
    finally:
        task.cancel()
    journal.close()


async def test_background_changes_wait_for_company_but_a_submitter_ends_the_wait(tmp_path: Path) -> None:
    journal = MempoolJournal(tmp_path / "mempool")
    writer = JournalWriter(journal)
    writer.background_delay_s = 60.0  # far beyond the test's timeouts: only a waiter can end it
    gossiped, submitted = record(USER_KEYS[0], 0), record(USER_KEYS[1], 0)
    task = asyncio.create_task(writer.run())
    try:
        writer.added(gossiped)  # from gossip: nobody waits for it
        await asyncio.sleep(0.05)
        assert writer.batches == 0
        writer.added(submitted)  # a client's: its answer waits
        await asyncio.wait_for(writer.durable(), timeout=10)
        assert writer.batches == 1 and stored(journal) == [gossiped.hash, submitted.hash]
    finally:
        task.cancel()
    journal.close()


class FailingOnce(MempoolJournal):
    """A journal whose first write fails as a full disk would."""

    failures = 1

    def write(self, puts: Sequence[tuple[bytes, bytes]], deletes: Iterable[bytes]) -> None:
        if self.failures:
            self.failures -= 1
            raise JournalError("disk full")
        super().write(puts, deletes)


async def test_a_failed_write_fails_its_waiters_and_the_batch_is_written_on_the_next_attempt(tmp_path: Path) -> None:
    journal = FailingOnce(tmp_path / "mempool")
    writer = JournalWriter(journal)
    writer.retry_s = 0.0
    first, second = record(USER_KEYS[0], 0), record(USER_KEYS[1], 0)
    writer.added(first)
    waiter = asyncio.create_task(writer.durable())
    task = asyncio.create_task(writer.run())
    try:
        with pytest.raises(JournalError, match="disk full"):
            await asyncio.wait_for(waiter, timeout=10)
        writer.added(second)
        await asyncio.wait_for(writer.durable(), timeout=10)  # the retry carries both
        assert stored(journal) == [first.hash, second.hash]
    finally:
        task.cancel()
    journal.close()


async def test_a_waiter_that_goes_away_does_not_disturb_the_others(tmp_path: Path) -> None:
    journal = MempoolJournal(tmp_path / "mempool")
    writer = JournalWriter(journal)
    writer.added(record(USER_KEYS[0], 0))
    gone = asyncio.create_task(writer.durable())
    staying = asyncio.create_task(writer.durable())
    await asyncio.sleep(0)
    gone.cancel()  # its HTTP client disconnected
    task = asyncio.create_task(writer.run())
    try:
        await asyncio.wait_for(staying, timeout=10)
    finally:
        task.cancel()
    journal.close()


async def test_pending_changes_are_written_at_close_and_a_pool_reopened_gets_them_back(tmp_path: Path) -> None:
    mempool = new_pool()
    writer, restored = open_mempool_journal(tmp_path / "mempool", mempool, lambda tx_hash: False)
    assert restored == [] and mempool.journal is writer
    txs = [record(USER_KEYS[0], 0), record(USER_KEYS[1], 0)]
    for tx in txs:
        mempool.add(tx)
    writer.close()  # a clean stop: the run task is gone, nothing was awaited

    again = new_pool()
    writer, restored = open_mempool_journal(tmp_path / "mempool", again, lambda tx_hash: False)
    assert restored == txs and len(again) == 2
    writer.close()
