"""The `contract_upgrade` admin transaction: the code at a contract's address is replaced, its storage, address and
name kept; only admins (at the admin threshold) may do it; code the release does not ship, invalid code and a
no-op upgrade fail; and the genesis EHR contract's code never changes (it is in every chain's genesis state)."""

from __future__ import annotations

import hashlib

from consensus.contract_txs import VM_PREFIX, ReadOnlyLedgerStorage, shared_vm
from consensus.contract_upgrade import upgrade_body
from consensus.contracts import bundled_source, ehr_latest_source, ehr_source, source
from consensus.execute import Receipt, apply_block
from consensus.genesis import Genesis, Params
from consensus.tx import Tx
from consensus.vm import BlockInfo, code_key, name_key
from primitives import codec
from primitives.keys import SigningKey
from tests.consensus.ledger_helpers import ADMIN_KEY, CHAIN_ID, USER_KEYS, VALIDATOR_KEYS, Chain

# sha256 of consensus/contracts/ehr.contract, the code every chain deploys at genesis. Editing that file would
# give every existing chain another genesis state on new nodes: new versions go in new files (ehr_v2.contract).
GENESIS_EHR_SHA256 = "7fe28e2df7292742dd7d6b57ece83150babce527f1d6122b1da1628353f1b644"
# sha256 of ehr_v2.contract: an upgrade transaction names the code by this hash, and a node syncing a chain that
# upgraded finds the code by it in its release, so a released version can never change either.
EHR_V2_SHA256 = "2a6c083c67dbca4573d82a077f3e446f2173fa8e0add4dacec3352285c9801da"
GAS = 2_000_000


def _upgrade(sender: SigningKey, nonce: int, body: dict[str, codec.Value]) -> Tx:
    return Tx.create(sender, CHAIN_ID, "contract_upgrade", nonce, body)


def _call(sender: SigningKey, nonce: int, function: str, args: list[codec.Value]) -> Tx:
    body: dict[str, codec.Value] = {"contract": "ehr", "function": function, "args": args, "gas_limit": GAS}
    return Tx.create(sender, CHAIN_ID, "call", nonce, body)


def _receipts(chain: Chain, txs: list[Tx]) -> list[Receipt]:
    _, result, _ = chain.add_block(txs)
    return list(result.receipts)


def _view(chain: Chain, function: str, args: list[codec.Value]) -> codec.Value:
    head = chain.head
    receipt = shared_vm().view(
        ReadOnlyLedgerStorage(chain.state.get_value),
        "ehr",
        function,
        args,
        block=BlockInfo(head.height, head.time_ms // 1000),
    )
    assert receipt.ok, receipt.error
    return receipt.return_value


def _ehr_address(chain: Chain) -> bytes:
    address = chain.state.get_value(VM_PREFIX + name_key("ehr"))
    assert address is not None
    return address


def test_released_ehr_contract_versions_are_frozen() -> None:
    assert hashlib.sha256(ehr_source().encode()).hexdigest() == GENESIS_EHR_SHA256
    assert hashlib.sha256(source("ehr_v2").encode()).hexdigest() == EHR_V2_SHA256
    assert bundled_source(bytes.fromhex(EHR_V2_SHA256)) == source("ehr_v2")


def test_an_admin_upgrades_the_ehr_contract_in_place_and_its_storage_stays() -> None:
    chain = Chain()
    doctor = USER_KEYS[0]
    [added] = _receipts(chain, [_call(ADMIN_KEY, 0, "add_user", [doctor.public_key, "doctor", b"e" * 32, ""])])
    assert added.ok, added.error
    address = _ehr_address(chain)
    [upgraded] = _receipts(chain, [_upgrade(ADMIN_KEY, 1, upgrade_body("ehr", ehr_latest_source()))])
    assert upgraded.ok, upgraded.error
    new_hash = hashlib.sha256(ehr_latest_source().encode()).digest()
    event = upgraded.events[0]
    assert event.name == "contract_upgraded"
    assert event.attrs == {
        "contract": address,
        "old_code_hash": bytes.fromhex(GENESIS_EHR_SHA256),
        "code_hash": new_hash,
    }
    # Same address and name, new code; the user registered under version 1 is still there.
    assert _ehr_address(chain) == address
    assert chain.state.get_value(VM_PREFIX + code_key(address)) == ehr_latest_source().encode()
    assert _view(chain, "contract_version", []) == 2
    user = _view(chain, "get_user", [doctor.public_key])
    assert isinstance(user, dict) and user["role"] == "doctor"
    # Upgrading to the code it already runs is refused.
    [again] = _receipts(chain, [_upgrade(ADMIN_KEY, 2, upgrade_body("ehr", ehr_latest_source()))])
    assert not again.ok and "already runs this code" in again.error


def test_upgrades_refused_for_non_admins_unknown_code_and_invalid_code() -> None:
    chain = Chain()
    address = _ehr_address(chain)
    unknown: dict[str, codec.Value] = {"contract": "ehr", "code_hash": b"\x01" * 32}
    mismatched: dict[str, codec.Value] = {
        **upgrade_body("ehr", "def f():\n    pass\n", inline=True),
        "code_hash": b"\x02" * 32,
    }
    receipts = _receipts(
        chain,
        [
            _upgrade(USER_KEYS[1], 0, upgrade_body("ehr", ehr_latest_source())),
            _upgrade(ADMIN_KEY, 0, unknown),
            _upgrade(ADMIN_KEY, 1, upgrade_body("ehr", "import os\n", inline=True)),
            _upgrade(ADMIN_KEY, 2, upgrade_body("nothing-here", ehr_latest_source())),
            _upgrade(ADMIN_KEY, 3, mismatched),
        ],
    )
    errors = [r.error for r in receipts]
    assert not any(r.ok for r in receipts), errors
    assert "needs an admin" in errors[0]
    assert "no contract code with hash" in errors[1]
    assert "not a valid contract" in errors[2]
    assert "no contract named" in errors[3]
    assert "sha256 is code_hash" in errors[4]
    assert chain.state.get_value(VM_PREFIX + code_key(address)) == ehr_source().encode()


def test_with_an_admin_threshold_the_upgrade_waits_for_enough_approvals() -> None:
    second = USER_KEYS[2]
    admins = (ADMIN_KEY.public_key, second.public_key)
    genesis = Genesis(CHAIN_ID, tuple(k.public_key for k in VALIDATOR_KEYS), admins, 1_000, Params(admin_threshold=2))
    chain = Chain(genesis=genesis)
    address = _ehr_address(chain)
    [first] = _receipts(chain, [_upgrade(ADMIN_KEY, 0, upgrade_body("ehr", ehr_latest_source()))])
    assert first.ok and [e.name for e in first.events] == ["approval"]
    assert chain.state.get_value(VM_PREFIX + code_key(address)) == ehr_source().encode()
    [done] = _receipts(chain, [_upgrade(second, 0, upgrade_body("ehr", ehr_latest_source()))])
    assert done.ok and [e.name for e in done.events] == ["contract_upgraded"]
    assert _view(chain, "contract_version", []) == 2


def test_a_node_syncing_a_chain_that_upgraded_re_executes_it_to_the_same_roots() -> None:
    """The upgrade block, re-executed by a fresh node from genesis (as catch-up sync does), matches every root the
    header claims; a later call then runs version 2 on both."""
    chain, replica = Chain(), Chain()
    blocks = [
        chain.add_block([_upgrade(ADMIN_KEY, 0, upgrade_body("ehr", ehr_latest_source()))])[0],
        chain.add_block([_call(ADMIN_KEY, 1, "contract_version", [])])[0],
    ]
    for block in blocks:
        result = apply_block(
            replica.state, block, replica.head, params=replica.genesis.params, registry=replica.registry
        )
        replica.finalise(block, result)
    assert replica.state.root == chain.state.root
    [receipt] = result.receipts
    returned = receipt.result
    assert receipt.ok and isinstance(returned, dict) and returned["return"] == 2
