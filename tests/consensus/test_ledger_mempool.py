from __future__ import annotations

import random
from typing import Any

import pytest

from consensus.errors import MempoolFullError, TxChainIdError, TxError, TxKindError, TxNonceError, TxSignatureError
from consensus.genesis import Params
from consensus.mempool import Admission, Mempool
from consensus.system_txs import default_registry
from consensus.tx import Tx
from tests.consensus.ledger_helpers import CHAIN_ID, USER_KEYS, record


def pool(nonces: dict[bytes, int] | None = None, **kwargs: Any) -> tuple[Mempool, dict[bytes, int]]:
    committed = nonces if nonces is not None else {}
    mempool = Mempool(
        chain_id=CHAIN_ID,
        params=Params(),
        registry=default_registry(),
        nonce_of=lambda a: committed.get(a, 0),
        **kwargs,
    )
    return mempool, committed


def test_contiguous_nonces_are_ready_and_gaps_wait() -> None:
    mempool, _ = pool()
    alice = USER_KEYS[0]
    assert mempool.add(record(alice, 1)) is Admission.QUEUED
    assert mempool.ready_count == 0
    assert mempool.add(record(alice, 0)) is Admission.READY
    assert mempool.ready_count == 2
    assert mempool.add(record(alice, 3)) is Admission.QUEUED
    assert [tx.nonce for tx in mempool.reap(max_bytes=1 << 20, max_count=100)] == [0, 1]


def test_reap_interleaves_senders_by_arrival_and_respects_limits() -> None:
    mempool, _ = pool()
    a, b = USER_KEYS[0], USER_KEYS[1]
    order = [record(a, 0), record(b, 0), record(a, 1), record(b, 1)]
    for tx in order:
        mempool.add(tx)
    assert mempool.reap(max_bytes=1 << 20, max_count=100) == order
    assert mempool.reap(max_bytes=1 << 20, max_count=3) == order[:3]
    assert mempool.reap(max_bytes=order[0].size + order[1].size, max_count=100) == order[:2]
    assert len(mempool) == 4  # reaping does not remove


def test_duplicates_are_known_and_conflicting_nonces_rejected() -> None:
    mempool, _ = pool()
    tx = record(USER_KEYS[0], 0)
    assert mempool.add(tx) is Admission.READY
    assert mempool.add(tx) is Admission.KNOWN
    assert mempool.add_raw(tx.raw) == (tx, Admission.KNOWN)
    with pytest.raises(TxNonceError, match="already pending"):
        mempool.add(record(USER_KEYS[0], 0, v=b"other"))
    assert len(mempool) == 1


def test_used_and_far_future_nonces_are_rejected() -> None:
    mempool, _ = pool({USER_KEYS[0].address: 5}, max_ahead=10)
    with pytest.raises(TxNonceError, match="already used; the sender's next nonce is 5"):
        mempool.add(record(USER_KEYS[0], 4))
    with pytest.raises(TxNonceError, match="too far ahead"):
        mempool.add(record(USER_KEYS[0], 15))
    assert mempool.add(record(USER_KEYS[0], 5)) is Admission.READY


def test_bounded_pool_rejects_with_a_clear_error() -> None:
    mempool, _ = pool(max_txs=3)
    for i in range(3):
        mempool.add(record(USER_KEYS[i], 0))
    with pytest.raises(MempoolFullError, match="full") as info:
        mempool.add(record(USER_KEYS[3], 0))
    assert info.value.http_status == 503
    small, _ = pool(max_bytes=record(USER_KEYS[0], 0).size)
    small.add(record(USER_KEYS[0], 0))
    with pytest.raises(MempoolFullError):
        small.add(record(USER_KEYS[1], 0))


def test_add_raw_checks_signature_chain_and_kind() -> None:
    mempool, _ = pool()
    tx = record(USER_KEYS[0], 0)
    with pytest.raises(TxSignatureError):
        mempool.add_raw(tx.raw[:-1] + bytes([tx.raw[-1] ^ 1]))
    with pytest.raises(TxChainIdError):
        mempool.add_raw(Tx.create(USER_KEYS[0], "elsewhere", "record", 0, {"key": b"k", "value": b""}).raw)
    with pytest.raises(TxKindError):
        mempool.add_raw(Tx.create(USER_KEYS[0], CHAIN_ID, "nope", 0, {}).raw)
    with pytest.raises(TxError, match="record value"):
        mempool.add_raw(Tx.create(USER_KEYS[0], CHAIN_ID, "record", 0, {"key": b"k", "value": b"x" * 2000}).raw)
    assert len(mempool) == 0


def test_update_after_commit_removes_included_and_stale_and_promotes() -> None:
    mempool, committed = pool()
    a = USER_KEYS[0]
    txs = [record(a, n) for n in (0, 1, 2, 4)]
    for tx in txs:
        mempool.add(tx)
    # A block (built elsewhere) included nonces 0 and 1, plus a different tx with nonce 2.
    committed[a.address] = 3
    mempool.update([txs[0], txs[1], record(a, 2, v=b"other")])
    assert txs[2].hash not in mempool and len(mempool) == 1 and mempool.ready_count == 0
    assert mempool.add(record(a, 3)) is Admission.READY
    assert [tx.nonce for tx in mempool.reap(max_bytes=1 << 20, max_count=10)] == [3, 4]
    mempool.update([])
    assert mempool.size_bytes == sum(tx.size for tx in mempool.reap(max_bytes=1 << 20, max_count=10))


def test_random_arrival_order_always_reaps_contiguous_nonces() -> None:
    rng = random.Random(5)
    mempool, committed = pool()
    txs = [record(k, n) for k in USER_KEYS[:4] for n in range(6)]
    rng.shuffle(txs)
    for tx in txs:
        mempool.add(tx)
    while len(mempool):
        batch = mempool.reap(max_bytes=1 << 20, max_count=5)
        seen: dict[bytes, int] = {}
        for tx in batch:
            expected = seen.get(tx.address, committed.get(tx.address, 0))
            assert tx.nonce == expected
            seen[tx.address] = expected + 1
        committed.update(seen)
        mempool.update(batch)
    assert all(committed[k.address] == 6 for k in USER_KEYS[:4])


def test_next_nonce_is_past_every_pending_transaction() -> None:
    a = USER_KEYS[0]
    mempool, _ = pool({a.address: 4})
    assert mempool.next_nonce(a.address) == 4
    mempool.add(record(a, 4))
    mempool.add(record(a, 5))
    assert mempool.next_nonce(a.address) == 6
    mempool.add(record(a, 7))  # after a gap: the next nonce is past it, never one already pending
    assert mempool.next_nonce(a.address) == 8
    assert mempool.next_nonce(USER_KEYS[1].address) == 0
