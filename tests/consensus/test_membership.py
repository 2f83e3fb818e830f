"""Membership of the p2p mesh on the chain: genesis members (absent on older chains, which keep their hash and
state root), and admin `add_member` / `remove_member` transactions."""

from __future__ import annotations

import dataclasses

import pytest

from consensus.errors import GenesisError, TxError
from consensus.genesis import Genesis, Params
from consensus.genesis_block import build_genesis
from consensus.members import members
from consensus.system_txs import default_registry
from consensus.tx import Tx
from primitives import codec
from tests.consensus.ledger_helpers import ADMIN_KEY, CHAIN_ID, USER_KEYS, VALIDATOR_KEYS, Chain, make_genesis
from tests.consensus.test_vm_versions import GENESIS_HASH_V1, GENESIS_STATE_ROOT_V1

EDGE = USER_KEYS[5].public_key


def with_members(genesis: Genesis) -> Genesis:
    listed = (*((k.public_key, ("storage", "validator")) for k in VALIDATOR_KEYS), (EDGE, ("edge",)))
    return dataclasses.replace(genesis, members=listed)


def member_tx(sender_index: int, nonce: int, kind: str, body: dict[str, codec.Value]) -> Tx:
    sender = ADMIN_KEY if sender_index < 0 else USER_KEYS[sender_index]
    return Tx.create(sender, CHAIN_ID, kind, nonce, body)


def test_a_genesis_without_members_hashes_and_builds_as_before() -> None:
    genesis = make_genesis()
    assert genesis.members == ()
    assert genesis.hash().hex() == GENESIS_HASH_V1
    _, changes = build_genesis(genesis)
    assert changes.root.hex() == GENESIS_STATE_ROOT_V1
    assert "members" not in genesis.to_json()


def test_genesis_members_are_hashed_stored_and_round_trip_through_json() -> None:
    genesis = with_members(make_genesis())
    assert genesis.hash() != make_genesis().hash()
    chain = Chain(genesis=genesis)
    stored = members(chain.state.get_value)
    assert stored[EDGE] == ("edge",)
    assert stored[VALIDATOR_KEYS[0].public_key] == ("storage", "validator")
    again = Genesis.from_json(genesis.to_json())
    assert again == genesis and again.hash() == genesis.hash()


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"key": "ab" * 32, "roles": ["miner"]}, "unknown role 'miner'"),
        ({"key": "ab" * 31, "roles": ["edge"]}, "32 bytes"),
        ({"key": "ab" * 32}, "exactly key and roles"),
    ],
)
def test_malformed_genesis_members_name_the_problem(entry: dict[str, object], words: str) -> None:
    doc = make_genesis().to_json()
    doc["members"] = [entry]
    with pytest.raises(GenesisError, match=words):
        Genesis.from_json(doc)


def test_admins_add_and_remove_members_from_the_next_block() -> None:
    chain = Chain(genesis=with_members(make_genesis()))
    newcomer = USER_KEYS[6].public_key
    _, result, _ = chain.add_block(
        [
            member_tx(0, 0, "add_member", {"key": newcomer, "roles": ["storage"]}),  # not an admin
            member_tx(-1, 0, "add_member", {"key": newcomer, "roles": ["storage", "manager"]}),
            member_tx(-1, 1, "remove_member", {"key": EDGE}),
        ]
    )
    stranger, added, removed = result.receipts
    assert not stranger.ok and "admin" in (stranger.error or "")
    assert added.ok and removed.ok, (added.error, removed.error)
    listed = members(chain.state.get_value)
    assert listed[newcomer] == ("manager", "storage")
    assert EDGE not in listed
    _, result, _ = chain.add_block([member_tx(-1, 2, "remove_member", {"key": EDGE})])
    assert not result.receipts[0].ok and "no such member" in (result.receipts[0].error or "")


def test_on_a_chain_without_genesis_members_an_add_starts_the_list() -> None:
    chain = Chain()
    assert members(chain.state.get_value) == {}
    _, result, _ = chain.add_block([member_tx(-1, 0, "add_member", {"key": EDGE, "roles": []})])
    assert result.receipts[0].ok
    assert members(chain.state.get_value) == {EDGE: ()}


@pytest.mark.parametrize(
    ("kind", "body", "words"),
    [
        ("add_member", {"key": b"\x01" * 31, "roles": ["edge"]}, "32-byte"),
        ("add_member", {"key": b"\x01" * 32, "roles": ["edge", "edge"]}, "twice"),
        ("add_member", {"key": b"\x01" * 32, "roles": ["miner"]}, "unknown role"),
        ("add_member", {"key": b"\x01" * 32}, "exactly the fields"),
        ("remove_member", {"key": b"\x01" * 32, "roles": []}, "exactly the fields"),
    ],
)
def test_malformed_member_changes_are_refused_at_admission(kind: str, body: dict[str, codec.Value], words: str) -> None:
    with pytest.raises(TxError, match=words):
        default_registry().check(Tx.create(ADMIN_KEY, CHAIN_ID, kind, 0, body), Params())
