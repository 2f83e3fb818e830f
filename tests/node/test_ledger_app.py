"""ChainApp, the node's consensus Application: proposals are capped, garbage from peers never raises."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from consensus.chainstore import ChainStore
from consensus.mempool import Mempool
from consensus.state import get_nonce
from consensus.system_txs import default_registry
from node.ledger import chain_app as ledger_app
from node.ledger.chain_app import ChainApp
from tests.consensus.ledger_helpers import CHAIN_ID, USER_KEYS, VALIDATOR_KEYS, make_genesis, record


def make_app(tmp_path: Path) -> ChainApp:
    genesis = make_genesis()
    store = ChainStore(tmp_path / "chain", genesis)
    registry = default_registry()
    mempool = Mempool(
        chain_id=CHAIN_ID,
        params=genesis.params,
        registry=registry,
        nonce_of=functools.partial(get_nonce, store.get_value),
    )
    return ChainApp(store, mempool, registry, VALIDATOR_KEYS[0].public_key, clock_ms=lambda: 50_000)


def test_garbage_values_get_a_hash_that_matches_nothing_and_never_validate(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    first, second = app.value_hash(b"\xff garbage"), app.value_hash(b"\xff other")
    assert len(first) == 32 and first != second
    assert not app.validate(1, b"\xff garbage")


def test_proposals_are_capped_and_validate_on_another_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger_app, "MAX_PROPOSAL_TXS", 5)
    proposer, other = make_app(tmp_path / "a"), make_app(tmp_path / "b")
    for nonce in range(8):
        tx = record(USER_KEYS[0], nonce, k=b"k%d" % nonce)
        proposer.mempool.add(tx)
        other.mempool.add(tx)
    value = proposer.propose(1, 0, 0.0)
    block = proposer.block_of(value)
    assert len(block.txs) == 5 and proposer.value_hash(value) == block.hash
    assert other.validate(1, value) and other.value_hash(value) == block.hash
    executed, _ = other.executed(value)
    assert executed.hash == block.hash


def test_a_bad_signature_is_caught_at_validation_when_the_mempool_never_checked_those_bytes(tmp_path: Path) -> None:
    # The mempool's transactions skip the signature check at block validation (it checked them on admission);
    # a transaction that did not come through this node's mempool is checked there, even when the pool holds the
    # correctly signed transaction with the same sender and nonce: the skip is keyed by the hash of the bytes.
    from consensus.tx import decode_tx

    proposer, other = make_app(tmp_path / "a"), make_app(tmp_path / "b")
    good = record(USER_KEYS[0], 0, k=b"k")
    forged_raw = good.raw[:-64] + bytes(64)  # the signature is the last 64 bytes of the canonical encoding
    forged = decode_tx(forged_raw, chain_id=CHAIN_ID, max_bytes=4096, check_signature=False)
    assert forged.hash != good.hash and not forged.verify_signature()
    proposer.mempool.add(forged)  # a faulty proposer: `add` trusts its caller to have checked the signature
    other.mempool.add_raw(good.raw)
    value = proposer.propose(1, 0, 0.0)
    assert [tx.hash for tx in proposer.block_of(value).txs] == [forged.hash]
    assert not other.validate(1, value)
    # A third node that admitted nothing rejects it too; an honest block with the good bytes validates.
    assert not make_app(tmp_path / "c").validate(1, value)
    honest = make_app(tmp_path / "d")
    honest.mempool.add_raw(good.raw)
    assert other.validate(1, honest.propose(1, 0, 0.0))
