from __future__ import annotations

import dataclasses

import pytest

from consensus.block import Block, merkle_root
from consensus.errors import BlockError, TxError, TxKindError, TxNonceError
from consensus.execute import STATUS_FAILED, ExecContext, Outcome, Registry, TxKind, apply_block, execute
from consensus.genesis import Params
from consensus.state import WorkingState, get_nonce, record_key, validators_at
from consensus.system_txs import default_registry, evidence_body
from consensus.tx import Tx
from consensus.votes import ValidatorSet, Vote, VoteKind
from primitives import codec
from tests.consensus.ledger_helpers import ADMIN_KEY, CHAIN_ID, USER_KEYS, VALIDATOR_KEYS, Chain, key, record


def ctx(height: int = 1) -> ExecContext:
    return ExecContext(CHAIN_ID, height, 5_000, VALIDATOR_KEYS[0].public_key, Params())


def test_record_stores_under_the_sender_and_consumes_the_nonce() -> None:
    chain = Chain()
    user = USER_KEYS[0]
    block, result, _ = chain.add_block([record(user, 0, b"k", b"v1"), record(user, 1, b"k", b"v2")])
    assert [r.ok for r in result.receipts] == [True, True]
    assert chain.state.get_value(record_key(user.address, b"k")) == b"v2"
    assert get_nonce(chain.state.get_value, user.address) == 2
    assert result.receipts[0].events[0].name == "record"
    assert block.header.state_root == chain.state.root


def test_proposer_skips_out_of_order_and_unknown_txs() -> None:
    chain = Chain()
    user = USER_KEYS[0]
    unknown = Tx.create(user, CHAIN_ID, "teleport", 0, {})
    block, _ = chain.propose([record(user, 1), unknown, record(user, 0), record(user, 1)])
    assert [tx.nonce for tx in block.txs] == [0, 1]


def test_execute_rejects_wrong_nonce_and_unknown_kind_before_any_write() -> None:
    state = WorkingState(Chain().state)
    registry = default_registry()
    with pytest.raises(TxNonceError, match="next nonce is 0"):
        execute(state, record(USER_KEYS[0], 5), ctx(), registry)
    with pytest.raises(TxKindError, match="teleport"):
        execute(state, Tx.create(USER_KEYS[0], CHAIN_ID, "teleport", 0, {}), ctx(), registry)
    assert state.snapshot() == 0


def test_failed_handler_reverts_its_writes_but_consumes_the_nonce() -> None:
    def handle(state: WorkingState, tx: Tx, c: ExecContext) -> Outcome:
        state.set(b"partial", b"write")
        from consensus.errors import TxFailed

        raise TxFailed("refused", cost=7)

    registry = Registry([TxKind("flaky", lambda tx, p: None, handle)])
    state = WorkingState(Chain().state)
    receipt = execute(state, Tx.create(USER_KEYS[0], CHAIN_ID, "flaky", 0, {}), ctx(), registry)
    assert receipt.status == STATUS_FAILED and receipt.error == "refused" and receipt.cost > 7
    assert state.get(b"partial") is None
    assert get_nonce(state.get, USER_KEYS[0].address) == 1


def test_bad_record_body_fails_the_receipt() -> None:
    chain = Chain()
    tx = Tx.create(USER_KEYS[0], CHAIN_ID, "record", 0, {"key": b"", "value": b"v"})
    with pytest.raises(TxError, match="record key"):
        default_registry().check(tx, Params())
    _, result, _ = chain.add_block([tx])
    assert not result.receipts[0].ok and "record key" in result.receipts[0].error


def test_validator_set_change_takes_effect_after_the_delay() -> None:
    chain = Chain()
    new_set: list[codec.Value] = [k.public_key for k in [*VALIDATOR_KEYS[:3], key(50)]]
    change = Tx.create(ADMIN_KEY, CHAIN_ID, "validator_set_change", 0, {"validators": new_set})
    block1, result1, _ = chain.add_block([change])  # height 1, delay 2 -> effective at 3
    assert result1.receipts[0].ok
    assert block1.header.next_validators_hash == block1.header.validators_hash
    block2, result2, _ = chain.add_block([])
    assert block2.header.next_validators_hash == ValidatorSet(tuple(k for k in new_set if isinstance(k, bytes))).hash()
    assert result2.next_validators.members == tuple(new_set)
    assert validators_at(chain.state.get_value, 2).members == tuple(k.public_key for k in VALIDATOR_KEYS)


def test_non_admin_cannot_change_sets_and_admin_sets_never_empty() -> None:
    chain = Chain()
    user = USER_KEYS[0]
    attempt = Tx.create(user, CHAIN_ID, "validator_set_change", 0, {"validators": [user.public_key]})
    empty = Tx.create(ADMIN_KEY, CHAIN_ID, "admin_set_change", 0, {"admins": []})
    _, result, _ = chain.add_block([attempt, empty])
    assert "not one" in result.receipts[0].error and "1 to" in result.receipts[1].error
    rotate = Tx.create(ADMIN_KEY, CHAIN_ID, "admin_set_change", 1, {"admins": [user.public_key]})
    _, result, _ = chain.add_block([rotate])
    assert result.receipts[0].ok
    old_admin_again = Tx.create(ADMIN_KEY, CHAIN_ID, "admin_set_change", 2, {"admins": [ADMIN_KEY.public_key]})
    new_admin = Tx.create(user, CHAIN_ID, "admin_set_change", 1, {"admins": [ADMIN_KEY.public_key]})
    _, result, _ = chain.add_block([old_admin_again, new_admin])
    assert [r.ok for r in result.receipts] == [False, True]


def test_admin_threshold_needs_distinct_admins() -> None:
    second = key(98)
    genesis = dataclasses.replace(
        Chain().genesis, admins=(ADMIN_KEY.public_key, second.public_key), params=Params(admin_threshold=2)
    )
    chain = Chain(genesis=genesis)
    chain.keys[second.public_key] = second
    body: dict[str, codec.Value] = {"admins": [second.public_key]}
    _, result, _ = chain.add_block([Tx.create(ADMIN_KEY, CHAIN_ID, "admin_set_change", 0, body)])
    assert result.receipts[0].events[0].name == "approval"
    _, result, _ = chain.add_block([Tx.create(ADMIN_KEY, CHAIN_ID, "admin_set_change", 1, body)])
    assert result.receipts[0].events[0].name == "approval"  # the same admin twice is still one approval
    _, result, _ = chain.add_block([Tx.create(second, CHAIN_ID, "admin_set_change", 0, body)])
    assert result.receipts[0].events[0].name == "admin_set_changed"


def _equivocation(height: int = 1, signer_index: int = 2) -> list[Vote]:
    signer = VALIDATOR_KEYS[signer_index]
    return [
        Vote(VoteKind.PREVOTE, CHAIN_ID, height, 0, bytes([n]) * 32, signer.public_key).signed(signer) for n in (1, 2)
    ]


def test_evidence_is_recorded_once() -> None:
    chain = Chain()
    chain.add_block([])
    a, b = _equivocation()
    reporter = USER_KEYS[0]
    first = Tx.create(reporter, CHAIN_ID, "evidence", 0, evidence_body(a, b))
    again = Tx.create(reporter, CHAIN_ID, "evidence", 1, evidence_body(b, a))
    _, result, _ = chain.add_block([first, again])
    assert result.receipts[0].ok and result.receipts[0].events[0].name == "equivocation"
    assert not result.receipts[1].ok and "already recorded" in result.receipts[1].error


def test_evidence_that_proves_nothing_is_refused() -> None:
    a, _ = _equivocation()
    same = Tx.create(USER_KEYS[0], CHAIN_ID, "evidence", 0, {"votes": [a.to_value(), a.to_value()]})
    with pytest.raises(TxError, match="different blocks"):
        default_registry().check(same, Params())
    forged = dataclasses.replace(_equivocation()[1], signature=bytes(64))
    bad = Tx.create(USER_KEYS[0], CHAIN_ID, "evidence", 0, {"votes": [a.to_value(), forged.to_value()]})
    with pytest.raises(TxError, match="signature"):
        default_registry().check(bad, Params())
    outsider = key(77)
    votes = [
        Vote(VoteKind.PREVOTE, CHAIN_ID, 1, 0, bytes([n]) * 32, outsider.public_key).signed(outsider) for n in (1, 2)
    ]
    chain = Chain()
    chain.add_block([])
    tx = Tx.create(USER_KEYS[0], CHAIN_ID, "evidence", 0, {"votes": [v.to_value() for v in votes]})
    _, result, _ = chain.add_block([tx])
    assert "not a validator" in result.receipts[0].error


def test_apply_block_re_executes_and_accepts_an_honest_block() -> None:
    chain = Chain()
    txs = [record(USER_KEYS[i], 0) for i in range(4)]
    block, built = chain.propose(txs)
    applied = apply_block(chain.state, block, chain.head, params=chain.genesis.params, registry=chain.registry)
    assert applied.changes.root == built.changes.root and applied.receipts == built.receipts


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("state_root", b"\x01" * 32, "state root"),
        ("receipts_root", b"\x01" * 32, "receipts"),
        ("next_validators_hash", b"\x01" * 32, "next_validators_hash"),
        ("validators_hash", b"\x01" * 32, "validator set"),
        ("proposer", b"\x01" * 32, "proposer"),
        ("time_ms", 0, "not after"),
    ],
)
def test_apply_block_rejects_a_lying_header(field: str, value: object, message: str) -> None:
    chain = Chain()
    block, _ = chain.propose([record(USER_KEYS[0], 0)])
    lying = Block(dataclasses.replace(block.header, **{field: value}), block.txs)  # type: ignore[arg-type]
    with pytest.raises(BlockError, match=message):
        apply_block(chain.state, lying, chain.head, params=chain.genesis.params, registry=chain.registry)


def test_apply_block_rejects_bad_signatures_and_bad_nonces() -> None:
    chain = Chain()
    good = record(USER_KEYS[0], 0, v=b"AAAA")
    tampered = dataclasses.replace(good, signature=bytes(64))
    block, _ = chain.propose([good])
    forged = Block(block.header, (tampered,))
    with pytest.raises(BlockError, match="signature"):
        apply_block(chain.state, forged, chain.head, params=chain.genesis.params, registry=chain.registry)
    # A preverified hash skips the check (the mempool already did it), so the same block then passes.
    apply_block(
        chain.state, block, chain.head, params=chain.genesis.params, registry=chain.registry, preverified={good.hash}
    )
    skipped, _ = chain.propose([record(USER_KEYS[0], 0)])
    late = record(USER_KEYS[0], 1)
    out_of_order = Block(dataclasses.replace(skipped.header, tx_root=merkle_root([late.hash])), (late,))
    with pytest.raises(BlockError, match="next nonce is 0"):
        apply_block(chain.state, out_of_order, chain.head, params=chain.genesis.params, registry=chain.registry)


def test_default_registry_has_record_and_the_system_kinds_and_refuses_duplicates() -> None:
    registry = default_registry()
    assert registry.names == [
        "add_member",
        "admin_set_change",
        "allowlist_add",
        "allowlist_remove",
        "call",
        "contract_upgrade",
        "deploy",
        "evidence",
        "record",
        "remove_member",
        "set_vm_version",
        "validator_set_change",
    ]
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.get("record"))
