"""The mempool journal on real LMDB: what a restarted node gets back, and what it drops."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from consensus.genesis import Params
from consensus.mempool import Mempool
from consensus.mempool_journal import MempoolJournal, reload
from consensus.system_txs import default_registry
from consensus.tx import Tx
from tests.consensus.ledger_helpers import CHAIN_ID, USER_KEYS, record


class Recorder:
    """A pool observer that journals synchronously (the node batches through node/ledger/group_commit.py)."""

    def __init__(self, journal: MempoolJournal) -> None:
        self.journal = journal

    def added(self, tx: Tx) -> None:
        self.journal.write([(tx.hash, tx.raw)], ())

    def removed(self, tx_hash: bytes) -> None:
        self.journal.write((), [tx_hash])


def pool(committed: dict[bytes, int] | None = None, **limits: Any) -> Mempool:
    nonces = committed if committed is not None else {}
    return Mempool(
        chain_id=CHAIN_ID, params=Params(), registry=default_registry(), nonce_of=lambda a: nonces.get(a, 0), **limits
    )


def write(journal: MempoolJournal, *txs: Tx) -> None:
    journal.write([(tx.hash, tx.raw) for tx in txs], ())


def never_final(tx_hash: bytes) -> bool:
    return False


def test_a_restarted_pool_gets_its_transactions_back_in_arrival_order_with_the_same_readiness(tmp_path: Path) -> None:
    alice, bob = USER_KEYS[0], USER_KEYS[1]
    before = pool()
    journal = MempoolJournal(tmp_path / "mempool")
    before.journal = Recorder(journal)
    # Alice's nonce 2 waits for nonce 1 (a gap), Bob's are contiguous.
    arrivals = [record(alice, 0), record(bob, 0), record(alice, 2), record(bob, 1)]
    for tx in arrivals:
        before.add(tx)
    journal.close()

    journal = MempoolJournal(tmp_path / "mempool")  # the node restarted
    after = pool()
    report = reload(journal, after, never_final)
    assert report.restored == arrivals and report.dropped == 0
    assert len(after) == 4 and after.ready_count == 3
    assert after.reap(max_bytes=1 << 20, max_count=100) == before.reap(max_bytes=1 << 20, max_count=100)
    # The gap still holds nonce 2 back until nonce 1 arrives.
    after.add(record(alice, 1))
    assert after.ready_count == 5
    assert len(journal) == 4  # reload itself writes nothing back


def test_the_journal_follows_the_pool_when_a_block_takes_its_transactions(tmp_path: Path) -> None:
    alice = USER_KEYS[0]
    committed: dict[bytes, int] = {}
    mempool = pool(committed)
    journal = MempoolJournal(tmp_path / "mempool")
    mempool.journal = Recorder(journal)
    txs = [record(alice, n) for n in range(3)]
    for tx in txs:
        mempool.add(tx)
    committed[txs[0].address] = 2  # nonces 0 and 1 are used now
    mempool.update(txs[:2])
    assert [entry.tx_hash for entry in journal.entries()[0]] == [txs[2].hash]


def test_final_and_stale_entries_are_dropped_and_deleted_at_reload(tmp_path: Path) -> None:
    """A block's transactions whose deletes had not reached the disk before a crash; and a transaction whose nonce
    another transaction used meanwhile (it can never run)."""
    alice, bob, carol = USER_KEYS[0], USER_KEYS[1], USER_KEYS[2]
    final_tx, stale_tx, pending_tx = record(alice, 0), record(bob, 0, v=b"other"), record(carol, 0)
    journal = MempoolJournal(tmp_path / "mempool")
    write(journal, final_tx, stale_tx, pending_tx)
    mempool = pool({final_tx.address: 1, stale_tx.address: 1})
    report = reload(journal, mempool, lambda tx_hash: tx_hash == final_tx.hash)
    assert report.restored == [pending_tx]
    assert (report.final, report.refused, report.malformed) == (1, 1, 0)
    assert [entry.tx_hash for entry in journal.entries()[0]] == [pending_tx.hash]


def test_a_transaction_written_twice_is_one_entry_and_keeps_its_first_place(tmp_path: Path) -> None:
    alice, bob = USER_KEYS[0], USER_KEYS[1]
    first, second = record(alice, 0), record(bob, 0)
    journal = MempoolJournal(tmp_path / "mempool")
    write(journal, first, second)
    write(journal, first)  # a retry, or a gossip copy of a transaction already held
    entries, bad = journal.entries()
    assert [entry.tx_hash for entry in entries] == [first.hash, second.hash] and bad == []
    assert reload(journal, pool(), never_final).restored == [first, second]


def test_two_transactions_for_one_nonce_keep_the_first_and_drop_the_other(tmp_path: Path) -> None:
    alice = USER_KEYS[0]
    first, rival = record(alice, 0, v=b"a"), record(alice, 0, v=b"b")
    journal = MempoolJournal(tmp_path / "mempool")
    write(journal, first, rival)
    report = reload(journal, pool(), never_final)
    assert report.restored == [first] and report.refused == 1
    assert len(journal) == 1


def test_arrival_order_continues_across_reopenings(tmp_path: Path) -> None:
    alice, bob = USER_KEYS[0], USER_KEYS[1]
    journal = MempoolJournal(tmp_path / "mempool")
    write(journal, record(bob, 0))
    journal.close()
    journal = MempoolJournal(tmp_path / "mempool")
    write(journal, record(alice, 0))
    assert [tx.address for tx in reload(journal, pool(), never_final).restored] == [
        record(bob, 0).address,
        record(alice, 0).address,
    ]


def test_damaged_entries_are_dropped_and_the_rest_reloads(tmp_path: Path) -> None:
    alice, bob = USER_KEYS[0], USER_KEYS[1]
    good = record(alice, 0)
    journal = MempoolJournal(tmp_path / "mempool")
    write(journal, good)
    flipped = bytearray(record(bob, 0).raw)
    flipped[-1] ^= 1  # the signature no longer verifies
    bad_signature = bytes(flipped)
    truncated = record(bob, 1).raw[:-7]  # a partial write of a transaction
    journal.write([(hashlib.sha256(bad_signature).digest(), bad_signature)], ())
    journal.write([(hashlib.sha256(truncated).digest(), truncated)], ())
    # Below the journal's own format: bytes stored under another key, a value too short for its arrival number.
    with journal._env.begin(write=True) as txn:
        txn.put(b"\x01" * 32, (99).to_bytes(8, "big") + record(bob, 2).raw)
        txn.put(b"\x02" * 32, b"\x00\x01")
    mempool = pool()
    report = reload(journal, mempool, never_final)
    assert report.restored == [good]
    assert (report.malformed, report.refused, report.final) == (4, 0, 0)
    assert len(journal) == 1 and len(mempool) == 1


def test_an_unreadable_journal_file_is_moved_aside_and_the_node_starts_empty(tmp_path: Path) -> None:
    path = tmp_path / "mempool"
    path.mkdir()
    (path / "data.mdb").write_bytes(b"not an LMDB file at all" * 1000)
    journal = MempoolJournal(path)
    assert journal.quarantined is not None and (journal.quarantined / "data.mdb").exists()
    assert len(journal) == 0
    write(journal, record(USER_KEYS[0], 0))
    assert len(journal) == 1


def test_a_full_map_grows_instead_of_failing(tmp_path: Path) -> None:
    journal = MempoolJournal(tmp_path / "mempool", initial_map_size=64 * 1024)
    txs = [record(USER_KEYS[n % 4], n // 4, v=b"x" * 1000) for n in range(400)]
    journal.write([(tx.hash, tx.raw) for tx in txs], ())
    assert len(journal) == 400
    assert reload(journal, pool(), never_final).restored == txs
