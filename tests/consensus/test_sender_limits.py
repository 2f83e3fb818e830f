"""Per-sender admission limits (pending count, token-bucket rate) on a fake clock, and the regression for an
unregistered key filling blocks with failed transactions at no cost: under "allowlist" it cannot get one in, on an
"open" chain the per-sender limits bound what it gets in."""

from __future__ import annotations

import pytest

from consensus.accounts import ALLOWLIST, check_sender
from consensus.errors import TxNotAllowlistedError, TxRateLimitError
from consensus.genesis import Params
from consensus.mempool import Mempool
from consensus.sender_limits import SenderLimitConfig, SenderLimits
from consensus.state import get_nonce
from consensus.system_txs import default_registry
from consensus.tx import Tx
from tests.consensus.ledger_helpers import CHAIN_ID, USER_KEYS, Chain, make_genesis, record

MALLORY, ALICE = USER_KEYS[1], USER_KEYS[0]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def failing_call(nonce: int) -> Tx:
    """A call to a contract that does not exist: it fails in its receipt, yet takes a slot in a block."""
    return Tx.create(
        MALLORY, CHAIN_ID, "call", nonce, {"contract": b"\x00" * 20, "function": "f", "args": [], "gas_limit": 1000}
    )


def test_the_pending_limit_refuses_with_429_and_names_the_bound() -> None:
    limits = SenderLimits(SenderLimitConfig(max_pending=3, rate_per_s=1000, burst=1000), FakeClock())
    for pending in range(3):
        limits.admit(b"a" * 32, pending)
    with pytest.raises(TxRateLimitError, match="already has 3 pending transactions \\(at most 3") as refused:
        limits.admit(b"a" * 32, 3)
    assert refused.value.http_status == 429


def test_the_rate_limit_allows_a_burst_then_refills_at_the_rate() -> None:
    clock = FakeClock()
    limits = SenderLimits(SenderLimitConfig(max_pending=100, rate_per_s=10, burst=5), clock)
    for _ in range(5):
        limits.admit(b"a" * 32, 0)
    with pytest.raises(TxRateLimitError, match=r"faster than 10 transactions/s .* retry in 0\.10 s"):
        limits.admit(b"a" * 32, 0)
    limits.admit(b"b" * 32, 0)  # another sender has its own bucket
    clock.now += 0.1  # one token back
    limits.admit(b"a" * 32, 0)
    with pytest.raises(TxRateLimitError):
        limits.admit(b"a" * 32, 0)
    clock.now += 10.0  # full again, never more than the burst
    for _ in range(5):
        limits.admit(b"a" * 32, 0)
    with pytest.raises(TxRateLimitError):
        limits.admit(b"a" * 32, 0)
    assert limits.refused == 3


def test_buckets_of_idle_senders_are_forgotten() -> None:
    clock = FakeClock()
    limits = SenderLimits(SenderLimitConfig(max_pending=10, rate_per_s=10, burst=10), clock)
    for i in range(50):
        limits.admit(bytes([i]) * 32, 0)
    assert len(limits) == 50
    clock.now += 2.0  # every bucket refilled (10 tokens at 10/s take 1 s)
    limits.admit(b"z" * 32, 0)
    assert len(limits) == 1


def mempool(params: Params, chain: Chain, clock: FakeClock) -> Mempool:
    committed = chain.state.get_value

    def check(sender: bytes) -> None:
        check_sender(params.accounts, committed, sender, chain.head.height + 1)

    return Mempool(
        chain_id=CHAIN_ID,
        params=params,
        registry=default_registry(),
        nonce_of=lambda address: get_nonce(chain.state.get_value, address),
        sender_check=check,
        limits=SenderLimits(clock=clock),
    )


def test_an_unregistered_key_gets_no_failed_transaction_into_an_allowlist_chain() -> None:
    params = Params(accounts=ALLOWLIST)
    chain = Chain(genesis=make_genesis(params))
    pool = mempool(params, chain, FakeClock())
    for nonce in range(5):
        with pytest.raises(TxNotAllowlistedError):
            pool.add(failing_call(nonce))
    assert len(pool) == 0
    block, _, _ = chain.add_block([failing_call(n) for n in range(5)])  # handed straight to a proposer
    assert block.txs == ()


def test_on_an_open_chain_the_per_sender_limits_bound_a_key_filling_blocks_with_failed_transactions() -> None:
    params = Params()
    chain = Chain(genesis=make_genesis(params))
    clock = FakeClock()
    pool = mempool(params, chain, clock)
    admitted, refused = 0, 0
    for nonce in range(300):
        try:
            pool.add(failing_call(nonce))
            admitted += 1
        except TxRateLimitError:
            refused += 1
    assert (admitted, refused) == (256, 44)  # at most 256 pending per sender
    # They are final (failed, in blocks) at once; the sender sends again straight away: the bucket is empty.
    txs = pool.reap(max_bytes=1 << 24, max_count=1000)
    _, result, _ = chain.add_block(txs)
    assert len(result.receipts) == 256 and not any(r.ok for r in result.receipts)
    pool.update(txs)
    with pytest.raises(TxRateLimitError, match="faster than 100 transactions/s"):
        pool.add(failing_call(256))
    clock.now += 1.0  # a second later: 100 more, not another 256
    accepted = 0
    for nonce in range(256, 556):
        try:
            pool.add(failing_call(nonce))
            accepted += 1
        except TxRateLimitError:
            break
    assert accepted == 100
    pool.add(record(ALICE, 0))  # another sender is not held up by Mallory
