"""Versioned consensus rules on the ledger: genesis selects the VM version, an admin transaction switches it at
a later height, and a chain made under version 1 re-executes to the same roots once version 2 exists."""

from __future__ import annotations

import pytest

from consensus.contract_txs import shared_vm, vm_for
from consensus.errors import GenesisError, TxError
from consensus.execute import Receipt, apply_block
from consensus.genesis import Genesis, Params
from consensus.genesis_block import build_genesis
from consensus.state import MemoryState
from consensus.system_txs import default_registry
from consensus.tx import Tx
from consensus.vm.versions import LATEST_VERSION, check_python, rules_for
from consensus.vm_version_state import vm_version_at, vm_version_schedule
from primitives import codec
from primitives.keys import SigningKey
from tests.consensus.ledger_helpers import ADMIN_KEY, CHAIN_ID, USER_KEYS, Chain, make_genesis
from tests.consensus.test_contract_txs import call_tx, deploy_tx

# Taken from the code before gas was versioned: a genesis without vm_version hashes as it always did, and a
# small chain of contract transactions made then has these roots and gas.
GENESIS_HASH_V1 = "0d1cfedb3aec24c05204b39da0a33e62a28db2951d03085b46933375c8fe8677"
GENESIS_STATE_ROOT_V1 = "88b35d3d572532322b889deada6bb7e7098c0733810659efb31bd77a3cf3e390"
BLOCKS_V1 = [
    (
        "f24391587835bf2be64c71d3bf627ba3b50408937e4ac971e7d91efcbcadddc1",
        "af6fb9520d21025511118e73c1a66299fba1b8ea534a14dda30ef423afb1920b",
        [7894],
    ),
    (
        "7d282093440d15896b3dddb270228f2eb6f734cb5a232bf8ed5a0fa0b25021e5",
        "d6b138dbbc505173df6e721929bd1c58af891df63e124cb37e40cdbe67c4bbef",
        [1785, 1000000, 1550],
    ),
]


def _address(receipt: Receipt) -> bytes:
    assert receipt.ok, receipt.error
    assert isinstance(receipt.result, dict)
    address = receipt.result["address"]
    assert isinstance(address, bytes)
    return address


def test_a_genesis_without_vm_version_hashes_as_before_versioning() -> None:
    genesis = make_genesis()
    assert genesis.params.vm_version == 1
    assert genesis.hash().hex() == GENESIS_HASH_V1
    _, changes = build_genesis(genesis)
    assert changes.root.hex() == GENESIS_STATE_ROOT_V1


def test_a_version_1_chain_builds_the_same_blocks_as_before_versioning() -> None:
    chain = Chain()
    block, result, _ = chain.add_block([deploy_tx(ADMIN_KEY, 0)])
    address = _address(result.receipts[0])
    calls = [
        call_tx(USER_KEYS[0], 0, address, "bump", [3]),
        call_tx(USER_KEYS[1], 0, address, "spin", []),
        call_tx(USER_KEYS[2], 0, address, "bump_then_fail", [1]),
    ]
    block2, result2, _ = chain.add_block(calls)
    got = [
        (b.header.receipts_root.hex(), b.header.state_root.hex(), [r.gas for r in res.receipts])
        for b, res in ((block, result), (block2, result2))
    ]
    assert got == BLOCKS_V1


DEEP = (
    "def init(start: int):\n    pass\n\n\n"
    "def main(n: int) -> bool:\n    a = [[0] * n] * n\n    return a == [[0] * n] * n\n"
)


def _switch(sender: SigningKey, nonce: int, version: int, height: int) -> Tx:
    body: dict[str, codec.Value] = {"version": version, "activation_height": height}
    return Tx.create(sender, CHAIN_ID, "set_vm_version", nonce, body)


def _deep_call(chain: Chain, nonce: int, address: bytes) -> Receipt:
    _, result, _ = chain.add_block([call_tx(USER_KEYS[0], nonce, address, "main", [40])])
    receipt = result.receipts[0]
    assert receipt.ok, receipt.error
    return receipt


def _switched_chain() -> tuple[Chain, list[Receipt]]:
    """Blocks 1-2 under version 1, a switch in block 3 to version 2 from height 5, calls at heights 2, 4 and 5."""
    chain = Chain()
    _, result, _ = chain.add_block([deploy_tx(ADMIN_KEY, 0, DEEP)])
    address = _address(result.receipts[0])
    calls = [_deep_call(chain, 0, address)]
    _, switched, _ = chain.add_block([_switch(ADMIN_KEY, 1, 2, 5)])
    assert switched.receipts[0].ok, switched.receipts[0].error
    calls += [_deep_call(chain, 1, address), _deep_call(chain, 2, address)]
    return chain, calls


def test_an_admin_switch_changes_the_gas_schedule_from_its_activation_height_only() -> None:
    chain, (before, still_v1, after) = _switched_chain()
    assert chain.head.height == 5
    assert before.gas == still_v1.gas  # height 4: the switch is scheduled but not active
    assert after.gas > before.gas  # height 5: version 2 charges the deep walk
    assert vm_version_at(chain.state.get_value, 4, 1) == 1
    assert vm_version_at(chain.state.get_value, 5, 1) == 2


def test_a_syncing_node_reexecutes_a_chain_that_switched_versions_to_the_same_roots() -> None:
    chain, _ = _switched_chain()
    genesis_block, changes = build_genesis(chain.genesis)
    state = MemoryState()
    state.apply(changes)
    parent = genesis_block.header
    for block in chain.blocks[1:]:
        result = apply_block(state, block, parent, params=chain.genesis.params, registry=default_registry())
        assert result.receipts_root == block.header.receipts_root
        state.apply(result.changes)
        parent = block.header
    assert state.root == chain.state.root


def test_a_switch_needs_an_admin_and_a_later_height() -> None:
    chain = Chain()
    _, result, _ = chain.add_block([_switch(USER_KEYS[0], 0, 2, 10), _switch(ADMIN_KEY, 0, 2, 1)])
    stranger, too_early = result.receipts
    assert not stranger.ok and "admin" in stranger.error
    assert not too_early.ok and "not after this block" in too_early.error
    assert vm_version_schedule(chain.state.get_value) == []


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"version": 99, "activation_height": 5}, "version must be one of"),
        ({"version": 2, "activation_height": 0}, "activation_height"),
        ({"version": 2}, "exactly the fields"),
    ],
)
def test_malformed_switches_are_refused_at_admission(body: dict[str, codec.Value], words: str) -> None:
    tx = Tx.create(ADMIN_KEY, CHAIN_ID, "set_vm_version", 0, body)
    with pytest.raises(TxError, match=words):
        default_registry().check(tx, Params())


def test_genesis_vm_version_is_hashed_only_when_it_is_not_1() -> None:
    v2 = make_genesis(Params(vm_version=2, max_block_gas=2_500_000, max_tx_gas=1_000_000, ns_per_gas=200))
    assert v2.hash() != make_genesis().hash()
    assert Genesis.from_json(v2.to_json()) == v2
    assert "vm_version" not in make_genesis().to_json()["params"]  # type: ignore[operator]


def test_genesis_refuses_an_unknown_vm_version() -> None:
    with pytest.raises(GenesisError, match="unknown vm_version 7"):
        make_genesis(Params(vm_version=7))


def test_the_vm_refuses_a_python_whose_ast_it_was_not_checked_against() -> None:
    check_python((3, 11))
    with pytest.raises(RuntimeError, match=r"Python 3\.11 only .*this is Python 3\.13"):
        check_python((3, 13))


def test_read_only_calls_use_the_latest_prices_which_track_cpu() -> None:
    # Views are not part of consensus; under version 1's prices a view of DEEP-style code ran ~40x its gas.
    assert shared_vm().schedule == rules_for(LATEST_VERSION).schedule
    assert vm_for(1).schedule == rules_for(1).schedule
