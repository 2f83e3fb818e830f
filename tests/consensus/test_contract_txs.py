"""The `deploy` and `call` transaction kinds on the ledger: admin-only deploys, gas in receipts, reverts, events,
contract storage in the state tree (with proofs), the block gas bound, and the EHR contract at genesis."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import smt
from consensus.chainstore import ChainStore
from consensus.contract_txs import (
    VM_PREFIX,
    LedgerStorage,
    ReadOnlyLedgerStorage,
    contract_state_key,
    has_contract,
    shared_vm,
)
from consensus.errors import BlockError, TxError
from consensus.execute import STATUS_FAILED, STATUS_OK, Receipt, apply_block, build_block
from consensus.genesis import Genesis, Params
from consensus.genesis_block import build_genesis
from consensus.state import MemoryState, WorkingState
from consensus.tx import Tx
from consensus.vm import BlockInfo, contract_address, name_key
from primitives import codec
from primitives.keys import SigningKey
from tests.consensus.ledger_helpers import ADMIN_KEY, CHAIN_ID, USER_KEYS, Chain, make_genesis

COUNTER = """
def init(start: int):
    ctx.set("count", start)


def bump(by: int) -> int:
    n = ctx.get("count", 0) + by
    ctx.set("count", n)
    ctx.emit("bumped", {"by": by, "count": n})
    return n


def bump_then_fail(by: int):
    ctx.set("count", 999)
    ctx.emit("never", {})
    revert("changed my mind")


def spin():
    while True:
        pass


def count() -> int:
    return ctx.get("count", 0)
"""
GAS = 1_000_000


def deploy_tx(sender: SigningKey, nonce: int, source: str = COUNTER, **extra: codec.Value) -> Tx:
    body: dict[str, codec.Value] = {"source": source, "args": [5], "gas_limit": GAS, **extra}
    return Tx.create(sender, CHAIN_ID, "deploy", nonce, body)


def call_tx(sender: SigningKey, nonce: int, contract: str | bytes, function: str, args: list[codec.Value]) -> Tx:
    body: dict[str, codec.Value] = {"contract": contract, "function": function, "args": args, "gas_limit": GAS}
    return Tx.create(sender, CHAIN_ID, "call", nonce, body)


def deployed_counter(chain: Chain) -> bytes:
    _, result, _ = chain.add_block([deploy_tx(ADMIN_KEY, 0)])
    receipt = result.receipts[0]
    assert receipt.ok, receipt.error
    assert isinstance(receipt.result, dict)
    address = receipt.result["address"]
    assert isinstance(address, bytes)
    return address


def stored_count(chain: Chain, address: bytes) -> object:
    raw = chain.state.get_value(contract_state_key(address, b"count"))
    return None if raw is None else codec.decode(raw)


def test_genesis_deploys_the_ehr_contract_with_the_genesis_admins() -> None:
    genesis = make_genesis()
    _, changes = build_genesis(genesis)
    state = MemoryState()
    state.apply(changes)
    storage = ReadOnlyLedgerStorage(state.get_value)
    address = storage.get(name_key("ehr"))
    assert address is not None and has_contract(state.get_value, address)
    abi = shared_vm().abi(storage, "ehr")
    assert isinstance(abi, dict) and isinstance(abi["functions"], list)
    assert "set_policy" in {f["name"] for f in abi["functions"] if isinstance(f, dict)}
    user = shared_vm().view(storage, "ehr", "get_user", [ADMIN_KEY.public_key], block=BlockInfo(0, 1))
    assert user.ok and isinstance(user.return_value, dict) and user.return_value["role"] == "admin"
    # Every contract key is under the ledger's reserved vm/ prefix.
    assert all(k.startswith((VM_PREFIX, b"sys/")) for k in state.values)


def test_genesis_hash_and_root_depend_on_the_admins_that_own_the_ehr_contract() -> None:
    a, b = make_genesis(), dataclasses.replace(make_genesis(), admins=(USER_KEYS[0].public_key,))
    assert build_genesis(a)[0].header.state_root != build_genesis(b)[0].header.state_root
    assert build_genesis(a)[0].header.state_root == build_genesis(make_genesis())[0].header.state_root


def test_admin_deploys_at_the_address_of_deployer_code_and_nonce() -> None:
    chain = Chain()
    address = deployed_counter(chain)
    expected = contract_address(ADMIN_KEY.address, hashlib.sha256(COUNTER.encode()).digest(), 0)
    assert address == expected
    assert has_contract(chain.state.get_value, address)
    assert stored_count(chain, address) == 5  # init ran with the deploy's args


def test_deploy_by_a_non_admin_fails_and_consumes_the_nonce() -> None:
    chain = Chain()
    _, result, _ = chain.add_block([deploy_tx(USER_KEYS[0], 0), record_after(USER_KEYS[0], 1)])
    failed, after = result.receipts
    assert failed.status == STATUS_FAILED and "needs an admin" in failed.error
    assert after.ok  # the failed deploy used nonce 0
    expected = contract_address(USER_KEYS[0].address, hashlib.sha256(COUNTER.encode()).digest(), 0)
    assert not has_contract(chain.state.get_value, expected)


def record_after(sender: SigningKey, nonce: int) -> Tx:
    return Tx.create(sender, CHAIN_ID, "record", nonce, {"key": b"k", "value": b"v"})


def test_named_deploy_and_call_by_name_with_events_gas_and_return_value() -> None:
    chain = Chain()
    chain.add_block([deploy_tx(ADMIN_KEY, 0, name="counter")])
    tx = call_tx(USER_KEYS[1], 0, "counter", "bump", [3])
    _, result, _ = chain.add_block([tx])
    receipt = result.receipts[0]
    assert receipt.status == STATUS_OK
    assert receipt.gas > 0 and receipt.cost >= receipt.gas + 1_000  # base cost + the VM gas
    assert isinstance(receipt.result, dict) and receipt.result["return"] == 8 and receipt.result["vm_status"] == "ok"
    [event] = receipt.events
    assert event.name == "bumped" and event.attrs["data"] == {"by": 3, "count": 8}
    assert event.attrs["contract"] == receipt.result["address"]
    # The receipt round-trips through its canonical encoding (it is hashed into the block's receipts_root).
    assert Receipt.from_value(codec.decode(receipt.encode())) == receipt


def test_revert_and_out_of_gas_give_failed_receipts_with_gas_and_no_state_change() -> None:
    chain = Chain()
    address = deployed_counter(chain)
    root = chain.head.state_root
    spin = Tx.create(
        USER_KEYS[0], CHAIN_ID, "call", 1, {"contract": address, "function": "spin", "args": [], "gas_limit": 20_000}
    )
    _, result, _ = chain.add_block([call_tx(USER_KEYS[0], 0, address, "bump_then_fail", [1]), spin])
    reverted, starved = result.receipts
    assert reverted.status == STATUS_FAILED and reverted.events == ()
    assert isinstance(reverted.result, dict) and reverted.result["vm_status"] == "reverted"
    assert "changed my mind" in reverted.error and reverted.gas > 0
    assert isinstance(starved.result, dict) and starved.result["vm_status"] == "out_of_gas"
    assert starved.gas == 20_000  # all of the limit
    assert stored_count(chain, address) == 5
    # Only the sender's nonce moved.
    assert chain.head.state_root != root
    assert set(result.changes.values) == {b"sys/nonce/" + USER_KEYS[0].address}


@pytest.mark.parametrize(
    ("kind", "body", "words"),
    [
        ("call", {"contract": "counter", "function": "bump", "args": [1], "gas_limit": 10**9}, "max_tx_gas"),
        ("call", {"contract": "counter", "function": "bump", "args": [1], "gas_limit": 0}, "gas_limit"),
        ("call", {"contract": b"short", "function": "bump", "args": [1], "gas_limit": 5}, "20-byte address"),
        ("call", {"contract": "Bad Name", "function": "bump", "args": [1], "gas_limit": 5}, "contract name"),
        ("call", {"contract": "counter", "function": "", "args": [1], "gas_limit": 5}, "function"),
        ("call", {"contract": "counter", "function": "bump", "args": 1, "gas_limit": 5}, "args must be a list"),
        ("call", {"contract": "counter", "function": "bump", "args": [], "gas_limit": 5, "x": 1}, "fields"),
        ("deploy", {"source": "", "args": [], "gas_limit": 5}, "source"),
        ("deploy", {"source": "def f():\n    pass\n", "args": [], "gas_limit": 5, "name": "A"}, "name must be"),
        ("deploy", {"source": "def f():\n    pass\n", "args": []}, "fields"),
    ],
)
def test_malformed_bodies_are_refused_at_admission(kind: str, body: dict[str, codec.Value], words: str) -> None:
    chain = Chain()
    tx = Tx.create(USER_KEYS[0], CHAIN_ID, kind, 0, body)
    with pytest.raises(TxError, match=words):
        chain.registry.check(tx, chain.genesis.params)


def test_invalid_source_is_a_failed_receipt_naming_the_line() -> None:
    chain = Chain()
    _, result, _ = chain.add_block([deploy_tx(ADMIN_KEY, 0, source="import os\n")])
    receipt = result.receipts[0]
    assert receipt.status == STATUS_FAILED and "invalid" in receipt.error and "line 1" in receipt.error


def test_storage_adapter_nests_snapshots_over_the_working_state() -> None:
    state = WorkingState(MemoryState())
    storage = LedgerStorage(state)
    outer = storage.snapshot()
    storage.set(b"a", b"1")
    inner = storage.snapshot()
    storage.set(b"a", b"2")
    storage.delete(b"b")
    storage.revert(inner)
    assert storage.get(b"a") == b"1" and state.get(VM_PREFIX + b"a") == b"1"
    storage.commit(outer)
    assert state.commit().values == {VM_PREFIX + b"a": b"1"}
    with pytest.raises(PermissionError):
        ReadOnlyLedgerStorage(state.get).set(b"a", b"x")


def test_another_node_reexecutes_the_block_to_the_same_root_and_proofs_verify(tmp_path: Path) -> None:
    chain = Chain()
    store = ChainStore(tmp_path / "chain", chain.genesis, initial_map_size=1 << 20)
    try:
        assert store.head == chain.head  # same genesis block 0, EHR contract included
        for txs in ([deploy_tx(ADMIN_KEY, 0)], [call_tx(USER_KEYS[2], 0, _counter_address(), "bump", [10])]):
            block, _, commit = chain.add_block(txs)
            store.import_block(block, commit, chain.registry)
            assert store.state_root == chain.head.state_root
        address = _counter_address()
        with store.reader() as reader:
            present, proof = reader.prove(contract_state_key(address, b"count"))
            absent, absence = reader.prove(contract_state_key(address, b"nothing"))
        assert present is not None and codec.decode(present) == 15
        root = store.head.state_root
        assert smt.verify_proof(root, contract_state_key(address, b"count"), present, proof)
        assert not smt.verify_proof(root, contract_state_key(address, b"count"), codec.encode(16), proof)
        assert absent is None and smt.verify_proof(root, contract_state_key(address, b"nothing"), None, absence)
        # A proof survives the trip through its canonical bytes (what GET /state/proof serves).
        decoded = smt.Proof.from_value(codec.decode(codec.encode(proof.to_value())))
        assert smt.verify_proof(root, contract_state_key(address, b"count"), present, decoded)
    finally:
        store.close()


def _counter_address() -> bytes:
    return contract_address(ADMIN_KEY.address, hashlib.sha256(COUNTER.encode()).digest(), 0)


def test_a_block_stops_taking_transactions_once_it_used_max_block_gas() -> None:
    params = Params(max_block_gas=30_000)
    chain = Chain(genesis=make_genesis(params))
    address = deployed_counter(chain)  # the deploy alone exceeds 30,000 gas: a block may end on one big tx
    txs = [call_tx(USER_KEYS[0], n, address, "bump", [1]) for n in range(20)]
    block, result = chain.propose(txs)
    assert 0 < len(block.txs) < 20
    assert sum(r.gas for r in result.receipts[:-1]) < 30_000 <= sum(r.gas for r in result.receipts)
    apply_block(chain.state, block, chain.head, params=params, registry=chain.registry)
    # A proposer with a looser limit packs all 20; validators holding the genesis limit refuse that block.
    oversized, _ = build_block(
        chain.state,
        chain.head,
        txs,
        proposer=chain.validators.proposer(chain.head.height + 1, 0),
        time_ms=chain.head.time_ms + 1000,
        params=Params(max_block_gas=10**9),
        registry=chain.registry,
    )
    assert len(oversized.txs) == 20
    with pytest.raises(BlockError, match="max_block_gas"):
        apply_block(chain.state, oversized, chain.head, params=params, registry=chain.registry)


def test_ehr_contract_through_ledger_transactions_and_a_view() -> None:
    chain = Chain()
    patient, doctor = USER_KEYS[3], USER_KEYS[4]
    enc = b"\x22" * 32
    txs = [
        call_tx(ADMIN_KEY, 0, "ehr", "add_user", [patient.public_key, "patient", enc, "area-1"]),
        call_tx(ADMIN_KEY, 1, "ehr", "add_user", [doctor.public_key, "doctor", enc, ""]),
        call_tx(patient, 0, "ehr", "set_policy", [patient.public_key, doctor.public_key, "*", 0]),
        call_tx(doctor, 0, "ehr", "add_user", [doctor.public_key, "admin", enc, ""]),  # not an admin: reverts
    ]
    _, result, _ = chain.add_block(txs)
    assert [r.ok for r in result.receipts] == [True, True, True, False]
    assert [e.name for e in result.receipts[2].events] == ["policy_set"]
    view = shared_vm().view(
        ReadOnlyLedgerStorage(chain.state.get_value),
        "ehr",
        "policy_list",
        [patient.public_key],
        block=BlockInfo(chain.head.height, chain.head.time_ms // 1000),
    )
    assert view.ok and isinstance(view.return_value, list) and len(view.return_value) == 1


def test_record_receipts_keep_their_encoding_without_gas_or_result() -> None:
    receipt = Receipt(b"\x01" * 32, STATUS_OK, 1_000)
    assert set(codec.decode(receipt.encode())) == {"tx_hash", "status", "cost", "events", "error"}  # type: ignore[arg-type]


def test_genesis_from_json_accepts_the_gas_params() -> None:
    genesis = Genesis.from_json({**make_genesis().to_json(), "params": {"max_tx_gas": 7, "max_block_gas": 9}})
    assert (genesis.params.max_tx_gas, genesis.params.max_block_gas) == (7, 9)


CALLS = st.lists(
    st.tuples(
        st.integers(0, 3),  # sender
        st.sampled_from(["bump", "bump_then_fail", "spin", "count", "missing"]),
        st.integers(-(2**40), 2**40),
        st.integers(1, 40_000),  # gas limit
    ),
    max_size=12,
)


@settings(max_examples=25, deadline=None)
@given(calls=CALLS)
def test_validators_reproduce_any_mix_of_calls_and_failures_exactly(calls: list[tuple[int, str, int, int]]) -> None:
    chain = Chain()
    address = deployed_counter(chain)
    nonces = [0, 0, 0, 0]
    txs = []
    expected = 5
    for sender, function, arg, gas in calls:
        args: list[codec.Value] = [arg] if function in ("bump", "bump_then_fail") else []
        body: dict[str, codec.Value] = {"contract": address, "function": function, "args": args, "gas_limit": gas}
        txs.append(Tx.create(USER_KEYS[sender], CHAIN_ID, "call", nonces[sender], body))
        nonces[sender] += 1
    block, built = chain.propose(txs)
    assert len(block.txs) == len(txs)
    replayed = apply_block(chain.state, block, chain.head, params=chain.genesis.params, registry=chain.registry)
    assert replayed.changes.root == built.changes.root == block.header.state_root
    assert replayed.receipt_encodings == built.receipt_encodings
    for (_, function, arg, _), receipt in zip(calls, built.receipts, strict=True):
        assert receipt.gas > 0 and receipt.cost > receipt.gas
        if function == "bump" and receipt.ok:
            expected += arg
        elif function != "count":
            assert function == "bump" or not receipt.ok  # only bump and count can succeed
    chain.finalise(block, built)
    assert stored_count(chain, address) == expected
