"""Each transaction signature is checked once per node, each block executed once, each gossiped transaction
decoded once (consensus/checked_txs.py; ChainApp's execution cache; the gossip judge's hand-over to the pool)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from consensus import mempool as mempool_module
from consensus.checked_txs import CheckedTxs, DecodedTxs
from consensus.errors import TxSignatureError
from consensus.genesis import Params
from consensus.system_txs import default_registry
from consensus.tx import Tx, decode_tx
from node.ledger import wire
from node.ledger.gossip.validation import LedgerGossipJudge, MeshMembers
from node.p2p.types import GossipMessage, Verdict
from tests.consensus.ledger_helpers import CHAIN_ID, USER_KEYS, record
from tests.node.test_ledger_app import make_app


@pytest.fixture
def signature_checks(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """How many Ed25519 transaction-signature checks ran (every path goes through Tx.verify_signature)."""
    calls = 0
    real = Tx.verify_signature

    def counting(self: Tx) -> bool:
        nonlocal calls
        calls += 1
        return real(self)

    monkeypatch.setattr(Tx, "verify_signature", counting)
    return lambda: calls


def test_a_signature_checked_at_admission_is_not_checked_again_at_validation_or_commit(
    tmp_path: Path, signature_checks: Callable[[], int]
) -> None:
    proposer, other = make_app(tmp_path / "a"), make_app(tmp_path / "b")
    txs = [record(USER_KEYS[n % 3], n // 3, k=b"k%d" % n) for n in range(9)]
    for tx in txs:
        proposer.mempool.add(tx)
        other.mempool.add_raw(tx.raw)
    assert signature_checks() == 9
    value = proposer.propose(1, 0, 0.0)
    assert other.validate(1, value) and other.executed(value)[0].hash == proposer.block_of(value).hash
    assert signature_checks() == 9  # validation and commit trusted the admission check
    assert other.executions == 1  # executed while validating; the commit took the result from the cache


def test_a_block_s_transactions_are_checked_once_however_often_they_come_back(
    tmp_path: Path, signature_checks: Callable[[], int]
) -> None:
    # A node that never admitted the transactions checks them while validating the first proposal holding them,
    # and neither a re-proposal of them in another block nor their late gossip costs another check.
    proposer, other = make_app(tmp_path / "a"), make_app(tmp_path / "b")
    txs = [record(USER_KEYS[0], n, k=b"k%d" % n) for n in range(4)]
    for tx in txs:
        proposer.mempool.add(tx)
    first = proposer.propose(1, 0, 0.0)
    assert other.validate(1, first)
    assert signature_checks() == 4
    proposer.clock_ms = lambda: 60_000  # round 1: a different block (another time) with the same transactions
    second = proposer.propose(1, 1, 0.0)
    assert proposer.block_of(second).hash != proposer.block_of(first).hash
    assert other.validate(1, second)
    for tx in txs:
        other.mempool.add_raw(tx.raw)
    assert signature_checks() == 4
    assert other.executions == 2  # two different blocks: each executed once


def test_a_bad_signature_is_never_remembered_and_other_bytes_are_checked_on_their_own() -> None:
    checked = CheckedTxs(capacity=2)
    good = record(USER_KEYS[0], 0)
    forged = decode_tx(good.raw[:-64] + bytes(64), chain_id=CHAIN_ID, max_bytes=4096, check_signature=False)
    assert not checked.verify(forged) and forged.hash not in checked
    assert not checked.verify(forged) and checked.checks == 2  # refused again, at full cost: nothing was cached
    assert checked.verify(good) and good.hash in checked and forged.hash not in checked
    for n in range(1, 3):
        checked.verify(record(USER_KEYS[0], n))
    assert good.hash not in checked and len(checked) == 2  # bounded: the oldest is forgotten (and checked again)


def test_the_pool_refuses_a_forged_signature_even_after_the_good_bytes_were_checked() -> None:
    pool = make_pool()
    good = record(USER_KEYS[0], 0)
    pool.add_raw(good.raw)
    forged_raw = good.raw[:-64] + bytes(64)
    with pytest.raises(TxSignatureError):
        pool.add_raw(forged_raw)


def make_pool() -> mempool_module.Mempool:
    return mempool_module.Mempool(chain_id=CHAIN_ID, params=Params(), registry=default_registry(), nonce_of=lambda a: 0)


def test_the_gossip_judge_decodes_a_batch_once_for_the_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = make_pool()
    judge = LedgerGossipJudge(CHAIN_ID, MeshMembers(), lambda: 0, max_tx_bytes=4096, decoded=pool.decoded.put)
    txs = [record(USER_KEYS[0], n, k=b"k%d" % n) for n in range(3)]
    data = wire.encode_txs([tx.raw for tx in txs])
    assert judge.txs(GossipMessage("t", data, "peer")) is Verdict.ACCEPT
    decodes = 0

    def counting(raw: bytes, *, chain_id: str, max_bytes: int, check_signature: bool = True) -> Tx:
        nonlocal decodes
        decodes += 1
        return decode_tx(raw, chain_id=chain_id, max_bytes=max_bytes, check_signature=check_signature)

    monkeypatch.setattr(mempool_module, "decode_tx", counting)
    for tx in txs:
        pool.add_raw(tx.raw)
    assert decodes == 0 and len(pool) == 3 and pool.checked.checks == 3


def test_a_decoded_transaction_is_taken_only_for_the_very_same_bytes() -> None:
    decoded = DecodedTxs(capacity=2)
    good = record(USER_KEYS[0], 0)
    other = record(USER_KEYS[0], 0, v=b"other")
    decoded.put(dataclasses.replace(good, raw=other.raw))  # a mismatched entry (no honest path makes one)
    assert decoded.take(good.hash, good.raw) is None
    decoded.put(good)
    assert decoded.take(good.hash, good.raw) is good and decoded.take(good.hash, good.raw) is None
    for n in range(3):
        decoded.put(record(USER_KEYS[1], n))
    assert len(decoded._txs) == 2  # bounded
