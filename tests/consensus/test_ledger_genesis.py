from __future__ import annotations

import json

import pytest

from consensus.errors import GenesisError
from consensus.genesis import Genesis, Params
from consensus.genesis_block import build_genesis
from consensus.state import MemoryState, admins, validators_at
from tests.consensus.ledger_helpers import ADMIN_KEY, VALIDATOR_KEYS, make_genesis


def test_json_round_trip_keeps_the_hash() -> None:
    genesis = make_genesis(Params(max_block_txs=77))
    again = Genesis.from_json(json.loads(json.dumps(genesis.to_json())))
    assert again == genesis and again.hash() == genesis.hash()
    assert make_genesis(Params(max_block_txs=78)).hash() != genesis.hash()


def test_genesis_block_and_state() -> None:
    genesis = make_genesis()
    block, changes = build_genesis(genesis)
    state = MemoryState()
    state.apply(changes)
    assert block.header.height == 0 and block.header.parent_hash == genesis.hash()
    assert block.header.state_root == state.root
    assert validators_at(state.get_value, 1).members == tuple(k.public_key for k in VALIDATOR_KEYS)
    assert admins(state.get_value) == (ADMIN_KEY.public_key,)
    assert build_genesis(genesis)[0].hash == block.hash  # deterministic


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"chain_id": "c", "validators": [], "admins": ["00" * 32], "initial_time_ms": 0}, "validators"),
        ({"chain_id": "c", "validators": ["00" * 32], "admins": "x", "initial_time_ms": 0}, "admins"),
        ({"chain_id": "c", "validators": ["00" * 32] * 2, "admins": ["00" * 32], "initial_time_ms": 0}, "twice"),
        ({"chain_id": "", "validators": ["00" * 32], "admins": ["00" * 32], "initial_time_ms": 0}, "chain_id"),
        (
            {
                "chain_id": "c",
                "validators": ["00" * 32],
                "admins": ["00" * 32],
                "initial_time_ms": 0,
                "params": {"bogus": 1},
            },
            "unknown",
        ),
        (
            {
                "chain_id": "c",
                "validators": ["00" * 32],
                "admins": ["00" * 32],
                "initial_time_ms": 0,
                "params": {"max_tx_bytes": 0},
            },
            "positive",
        ),
        ([], "object"),
    ],
)
def test_malformed_genesis_is_rejected_with_a_reason(doc: object, message: str) -> None:
    with pytest.raises(GenesisError, match=message):
        Genesis.from_json(doc)
