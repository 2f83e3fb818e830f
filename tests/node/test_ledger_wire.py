"""Ledger wire pieces of the node: compact blocks, tx batches, requests, and the sign guard across restarts."""

from __future__ import annotations

from pathlib import Path

import cbor2
import pytest

from consensus.block import Block, Header
from consensus.proposal import Proposal
from consensus.votes import Vote, VoteKind
from node.ledger import wire
from node.ledger.sign_guard import SignGuard
from primitives import codec
from tests.consensus.ledger_helpers import CHAIN_ID, USER_KEYS, VALIDATOR_KEYS, record

H = bytes(32)


def sample_block(n: int = 3) -> Block:
    header = Header(CHAIN_ID, 5, H, 1234, VALIDATOR_KEYS[0].public_key, H, H, H, H, H)
    return Block(header, tuple(record(USER_KEYS[0], i, v=b"v%d" % i) for i in range(n)))


def test_compact_block_rebuilds_the_exact_block_bytes_from_known_transactions() -> None:
    block = sample_block()
    data = wire.CompactBlock.of(block).encode()
    assert len(data) < len(block.encode())
    compact = wire.CompactBlock.decode(data, max_txs=10)
    assert compact.header.hash == block.hash
    known = {tx.hash: tx for tx in block.txs}
    rebuilt = compact.expand(known.get)
    assert rebuilt is not None and rebuilt.encode() == block.encode()
    del known[block.txs[1].hash]
    assert compact.expand(known.get) is None  # one missing: the caller fetches the block by hash


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\xff", "compact block"),
        (codec.encode({"header": {}, "tx_hashes": []}), "header"),
        (codec.encode({"header": {}, "tx_hashes": [b"short"]}), "32 bytes"),
        (codec.encode({"header": {}, "tx_hashes": [H] * 11}), "exceed"),
        (codec.encode({"header": {}, "tx_hashes": [], "extra": 1}), "exactly"),
    ],
)
def test_compact_block_rejects_malformed_input(data: bytes, problem: str) -> None:
    with pytest.raises(wire.WireError, match=problem):
        wire.CompactBlock.decode(data, max_txs=10)


def test_tx_batches_round_trip_and_reject_non_bytes() -> None:
    raws = [b"a", b"bc"]
    assert wire.decode_txs(wire.encode_txs(raws)) == raws
    for bad in (cbor2.dumps({"txs": [1]}), cbor2.dumps([b"a"]), b"\xff\x00"):
        with pytest.raises(wire.WireError, match="tx batch"):
            wire.decode_txs(bad)


def test_requests_are_bounded_and_checked() -> None:
    assert wire.decode_request(wire.blocks_request(1, 10_000)).end == wire.MAX_SYNC_BLOCKS
    assert wire.decode_request(wire.value_request(H)).value_hash == H
    assert wire.decode_request(wire.round_state_request(7)).height == 7
    for bad, problem in (
        (codec.encode({"type": "blocks", "from": 5, "to": 2}), "from"),
        (codec.encode({"type": "value", "hash": b"x"}), "32 bytes"),
        (codec.encode({"type": "nope"}), "unknown"),
    ):
        with pytest.raises(wire.WireError, match=problem):
            wire.decode_request(bad)
    status = wire.PeerStatus(CHAIN_ID, H, 9)
    assert wire.PeerStatus.decode(status.encode()) == status


def vote(kind: VoteKind, round_: int, block_hash: bytes | None, height: int = 3) -> Vote:
    key = VALIDATOR_KEYS[0]
    return Vote(kind, CHAIN_ID, height, round_, block_hash, key.public_key).signed(key)


def test_sign_guard_refuses_a_second_value_in_a_slot_even_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "signed.json"
    guard = SignGuard(path)
    first = vote(VoteKind.PREVOTE, 0, b"\x01" * 32)
    assert guard.allow_vote(first) and guard.allow_vote(first)  # repeating the same vote is fine
    assert guard.allow_vote(vote(VoteKind.PRECOMMIT, 0, None))
    key = VALIDATOR_KEYS[0]
    proposal = Proposal(CHAIN_ID, 3, 1, -1, b"\x02" * 32, key.public_key).signed(key)
    assert guard.allow_proposal(proposal)

    restarted = SignGuard(path)
    assert not restarted.allow_vote(vote(VoteKind.PREVOTE, 0, b"\x03" * 32))
    assert not restarted.allow_vote(vote(VoteKind.PRECOMMIT, 0, b"\x01" * 32))
    other = Proposal(CHAIN_ID, 3, 1, -1, b"\x04" * 32, key.public_key).signed(key)
    assert not restarted.allow_proposal(other) and restarted.allow_proposal(proposal)
    assert set(restarted.votes_at(3)) == {first, vote(VoteKind.PRECOMMIT, 0, None)}
    # A later height forgets the final one's slots.
    assert restarted.allow_vote(vote(VoteKind.PREVOTE, 0, None, height=4))
    assert SignGuard(path).votes_at(3) == [] and len(SignGuard(path).votes_at(4)) == 1


def test_sign_guard_survives_an_unreadable_record(tmp_path: Path) -> None:
    path = tmp_path / "signed.json"
    path.write_text("{not json")
    assert SignGuard(path).allow_vote(vote(VoteKind.PREVOTE, 0, None))
