"""Blocks that cannot stall consensus (VM version 2): a block's total gas is at most max_block_gas — the proposer
stops before the transaction that would cross it, a block over it is invalid — and the genesis must keep a full
block's execution inside the propose timeout (docs/CONSENSUS.md "Block execution bound")."""

from __future__ import annotations

import dataclasses

import pytest

from consensus.errors import BlockError, GenesisError
from consensus.execute import apply_block, build_block
from consensus.genesis import NEW_NETWORK_PARAMS, Params, check_vm_params
from consensus.tx import Tx
from node.cluster.config import ConfigError, GenesisSpec, generate_network, genesis_of
from primitives import codec
from tests.consensus.ledger_helpers import ADMIN_KEY, CHAIN_ID, USER_KEYS, Chain, make_genesis
from tests.consensus.test_contract_txs import deploy_tx

LIMIT = 30_000
V2 = Params(vm_version=2, max_block_gas=LIMIT, max_tx_gas=LIMIT, ns_per_gas=1)


def _counter(chain: Chain) -> bytes:
    _, result, _ = chain.add_block([deploy_tx(ADMIN_KEY, 0, gas_limit=LIMIT)])
    receipt = result.receipts[0]
    assert receipt.ok and isinstance(receipt.result, dict), receipt.error
    address = receipt.result["address"]
    assert isinstance(address, bytes)
    return address


def _bumps(address: bytes, count: int) -> list[Tx]:
    body: dict[str, codec.Value] = {"contract": address, "function": "bump", "args": [1], "gas_limit": 5_000}
    return [Tx.create(USER_KEYS[0], CHAIN_ID, "call", n, dict(body)) for n in range(count)]


def test_a_version_2_proposer_stops_before_the_transaction_that_would_cross_max_block_gas() -> None:
    chain = Chain(genesis=make_genesis(V2))
    txs = _bumps(_counter(chain), 40)
    block, result = chain.propose(txs)
    used = sum(r.gas for r in result.receipts)
    assert 0 < len(block.txs) < 40
    assert used <= LIMIT < used + result.receipts[-1].gas  # the next bump (same gas) would have crossed it
    apply_block(chain.state, block, chain.head, params=V2, registry=chain.registry)
    chain.finalise(block, result)
    follow, _ = chain.propose(txs[len(block.txs) :])
    assert follow.txs[0] == txs[len(block.txs)]  # the one left out leads the next block


def test_a_version_2_block_over_max_block_gas_is_invalid() -> None:
    chain = Chain(genesis=make_genesis(V2))
    txs = _bumps(_counter(chain), 40)
    # A byzantine proposer that ignores the bound (or applies version 1's "start while below") over-fills it.
    for looser in (
        Params(vm_version=2, max_block_gas=10**9, max_tx_gas=LIMIT, ns_per_gas=1),
        Params(max_block_gas=LIMIT, max_tx_gas=LIMIT),
    ):
        oversized, result = build_block(
            chain.state,
            chain.head,
            txs,
            proposer=chain.validators.proposer(chain.head.height + 1, 0),
            time_ms=chain.head.time_ms + 1000,
            params=looser,
            registry=chain.registry,
        )
        assert sum(r.gas for r in result.receipts) > LIMIT
        with pytest.raises(BlockError, match="over max_block_gas"):
            apply_block(chain.state, oversized, chain.head, params=V2, registry=chain.registry)


def test_genesis_refuses_gas_bounds_that_do_not_fit_the_propose_timeout() -> None:
    with pytest.raises(GenesisError, match=r"\(max_block_gas 20000000 \+ max_tx_gas 5000000\) × ns_per_gas 100"):
        make_genesis(Params(vm_version=2))
    with pytest.raises(GenesisError, match="more than 1/2 of the 1500 ms propose timeout"):
        check_vm_params(Params(vm_version=2, max_block_gas=3_000_000, max_tx_gas=1_000_000, ns_per_gas=200))
    check_vm_params(Params.from_value(dict(NEW_NETWORK_PARAMS)))  # what generated networks use: 720 ms ≤ 750 ms
    make_genesis(Params(max_block_gas=20_000_000, ns_per_gas=10_000))  # version 1 chains predate the rule


def test_a_network_config_breaking_the_rule_is_refused_naming_it() -> None:
    key = "ed25519:" + USER_KEYS[0].public_key.hex()
    base = generate_network(1)
    spec = GenesisSpec("ehrnet-x", (key,), (key,), params={**NEW_NETWORK_PARAMS, "max_block_gas": 4_000_000})
    with pytest.raises(ConfigError, match=r"genesis: .*max_block_gas 4000000.*lower max_block_gas or max_tx_gas"):
        genesis_of(dataclasses.replace(base, genesis=spec))
    fitting = dataclasses.replace(base, genesis=dataclasses.replace(spec, params=dict(NEW_NETWORK_PARAMS)))
    assert genesis_of(fitting).params.vm_version == 2


def test_version_2_refuses_a_transaction_limit_above_the_block_limit() -> None:
    # Such a transaction could never fit, and the proposer stops at the first one that does not: it would hold
    # every transaction queued behind it.
    with pytest.raises(GenesisError, match="max_tx_gas 2000 may not exceed max_block_gas 1000"):
        check_vm_params(Params(vm_version=2, max_block_gas=1000, max_tx_gas=2000, ns_per_gas=1))
