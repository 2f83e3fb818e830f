"""Account permissioning as a validity rule: the genesis `accounts` param, the admin allowlist transactions, a
proposer that skips and a validator that rejects a non-allowlisted sender, and the mempool refusing it first."""

from __future__ import annotations

import dataclasses

import pytest

from consensus.accounts import ALLOWLIST, is_listed, may_send
from consensus.errors import BlockError, GenesisError, TxError, TxNotAllowlistedError
from consensus.execute import apply_block, build_block
from consensus.genesis import Genesis, Params
from consensus.genesis_block import build_genesis
from consensus.mempool import Mempool
from consensus.system_txs import default_registry
from consensus.tx import Tx
from primitives import codec
from tests.consensus.ledger_helpers import ADMIN_KEY, CHAIN_ID, USER_KEYS, VALIDATOR_KEYS, Chain, make_genesis, record
from tests.consensus.test_vm_versions import GENESIS_HASH_V1, GENESIS_STATE_ROOT_V1

ALICE, MALLORY = USER_KEYS[0], USER_KEYS[1]


def allowlist_chain() -> Chain:
    return Chain(genesis=make_genesis(Params(accounts=ALLOWLIST)))


def admin_tx(nonce: int, kind: str, key: bytes) -> Tx:
    return Tx.create(ADMIN_KEY, CHAIN_ID, kind, nonce, {"key": key})


def test_a_genesis_without_the_setting_is_open_and_hashes_as_before() -> None:
    genesis = make_genesis()
    assert genesis.params.accounts == "open"
    assert genesis.hash().hex() == GENESIS_HASH_V1
    assert build_genesis(genesis)[1].root.hex() == GENESIS_STATE_ROOT_V1
    assert "accounts" not in genesis.to_json()["params"]  # type: ignore[operator]


def test_an_allowlist_genesis_hashes_differently_and_round_trips() -> None:
    genesis = make_genesis(Params(accounts=ALLOWLIST))
    assert genesis.hash() != make_genesis().hash()
    again = Genesis.from_json(genesis.to_json())
    assert again.params.accounts == ALLOWLIST and again.hash() == genesis.hash()


@pytest.mark.parametrize("value", ["closed", 1, ""])
def test_an_unknown_accounts_mode_is_refused_by_name(value: object) -> None:
    doc = make_genesis().to_json()
    doc["params"] = {"accounts": value}
    with pytest.raises(GenesisError, match="accounts must be one of open, allowlist"):
        Genesis.from_json(doc)


def test_admins_and_validators_are_allowlisted_implicitly_users_are_not() -> None:
    chain = allowlist_chain()
    get = chain.state.get_value
    assert may_send(get, ADMIN_KEY.public_key, 1)
    assert may_send(get, VALIDATOR_KEYS[0].public_key, 1)
    assert not may_send(get, ALICE.public_key, 1)


def test_the_proposer_skips_and_a_validator_rejects_a_non_allowlisted_sender() -> None:
    chain = allowlist_chain()
    block, result = chain.propose([record(MALLORY, 0), record(ADMIN_KEY, 0)])
    assert [tx.sender for tx in block.txs] == [ADMIN_KEY.public_key]  # Mallory's is left out
    # A byzantine proposer builds as if the chain were open; every honest validator's re-execution refuses it.
    open_params = dataclasses.replace(chain.genesis.params, accounts="open")
    forged, _ = build_block(
        chain.state,
        chain.head,
        [record(MALLORY, 0)],
        proposer=chain.validators.proposer(1, 0),
        time_ms=chain.head.time_ms + 1000,
        params=open_params,
        registry=chain.registry,
    )
    assert len(forged.txs) == 1
    with pytest.raises(BlockError, match="not an allowlisted account"):
        apply_block(chain.state, forged, chain.head, params=chain.genesis.params, registry=chain.registry)
    # The same block is valid on an open chain: the rule, not something else, rejected it.
    apply_block(chain.state, forged, chain.head, params=open_params, registry=chain.registry)
    chain.finalise(block, result)


def test_admins_allowlist_and_disallow_an_account_from_the_next_transaction() -> None:
    chain = allowlist_chain()
    alice = ALICE.public_key
    _, result, _ = chain.add_block([admin_tx(0, "allowlist_add", alice), record(ALICE, 0)])
    assert [r.ok for r in result.receipts] == [True, True]
    assert is_listed(chain.state.get_value, alice)
    block, result, _ = chain.add_block([admin_tx(1, "allowlist_remove", alice), record(ALICE, 1)])
    assert len(block.txs) == 1 and result.receipts[0].ok  # removed first, so Alice's next one is left out
    assert not may_send(chain.state.get_value, alice, chain.head.height + 1)
    _, result, _ = chain.add_block([admin_tx(2, "allowlist_remove", alice)])
    assert not result.receipts[0].ok and "not on the allowlist" in result.receipts[0].error


def test_only_admins_change_the_allowlist() -> None:
    chain = allowlist_chain()
    validator = VALIDATOR_KEYS[0]  # allowed to send, but not an admin
    tx = Tx.create(validator, CHAIN_ID, "allowlist_add", 0, {"key": MALLORY.public_key})
    _, result, _ = chain.add_block([tx])
    assert not result.receipts[0].ok and "admin" in result.receipts[0].error
    assert not is_listed(chain.state.get_value, MALLORY.public_key)


@pytest.mark.parametrize(
    ("body", "words"),
    [({"key": b"\x01" * 31}, "32-byte"), ({}, "exactly the field"), ({"key": b"\x01" * 32, "x": 1}, "exactly")],
)
def test_malformed_allowlist_changes_are_refused_at_admission(body: dict[str, codec.Value], words: str) -> None:
    with pytest.raises(TxError, match=words):
        default_registry().check(Tx.create(ADMIN_KEY, CHAIN_ID, "allowlist_add", 0, body), Params())


def test_the_mempool_refuses_a_non_allowlisted_sender_with_403() -> None:
    chain = allowlist_chain()
    params = chain.genesis.params

    def check(sender: bytes) -> None:
        from consensus.accounts import check_sender

        check_sender(params.accounts, chain.state.get_value, sender, chain.head.height + 1)

    mempool = Mempool(
        chain_id=CHAIN_ID, params=params, registry=default_registry(), nonce_of=lambda a: 0, sender_check=check
    )
    with pytest.raises(TxNotAllowlistedError, match="not an allowlisted account") as refused:
        mempool.add(record(MALLORY, 0))
    assert refused.value.http_status == 403
    mempool.add(record(ADMIN_KEY, 0))
    assert len(mempool) == 1


def test_a_disallowed_accounts_pending_transactions_leave_the_pool_with_the_block_that_disallows_it() -> None:
    chain = allowlist_chain()
    chain.add_block([admin_tx(0, "allowlist_add", ALICE.public_key)])
    params = chain.genesis.params

    def check(sender: bytes) -> None:
        from consensus.accounts import check_sender

        check_sender(params.accounts, chain.state.get_value, sender, chain.head.height + 1)

    mempool = Mempool(
        chain_id=CHAIN_ID, params=params, registry=default_registry(), nonce_of=lambda a: 0, sender_check=check
    )
    for nonce in range(3):
        mempool.add(record(ALICE, nonce))
    remove = admin_tx(1, "allowlist_remove", ALICE.public_key)
    block, _, _ = chain.add_block([remove])  # Alice's are not in it: the proposer here is handed only the removal
    mempool.update(block.txs)
    assert len(mempool) == 0 and mempool.ready_count == 0
    assert mempool.reap(max_bytes=1 << 20, max_count=100) == []


def test_manager_and_edge_members_are_allowlisted_implicitly_plain_members_are_not() -> None:
    manager, edge, storage = USER_KEYS[3], USER_KEYS[4], USER_KEYS[5]
    listed = ((manager.public_key, ("manager",)), (edge.public_key, ("edge",)), (storage.public_key, ("storage",)))
    genesis = dataclasses.replace(make_genesis(Params(accounts=ALLOWLIST)), members=listed)
    chain = Chain(genesis=genesis)
    get = chain.state.get_value
    assert may_send(get, manager.public_key, 1) and may_send(get, edge.public_key, 1)
    assert not may_send(get, storage.public_key, 1)
    block, _, _ = chain.add_block([record(manager, 0), record(edge, 0), record(storage, 0)])
    assert [tx.sender for tx in block.txs] == [manager.public_key, edge.public_key]
