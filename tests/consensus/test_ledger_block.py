from __future__ import annotations

import contextlib
import dataclasses
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.block import (
    EMPTY_ROOT,
    Block,
    Commit,
    Header,
    _validator_offset,
    block_to_json,
    decode_block,
    merkle_root,
    validate_body,
    validate_link,
    validate_time,
    verify_commit,
)
from consensus.errors import BlockError, CommitError
from consensus.votes import ValidatorSet, Vote, VoteKind
from primitives import codec
from tests.consensus.ledger_helpers import CHAIN_ID, USER_KEYS, VALIDATOR_KEYS, Chain, key, record, sign_commit

VALIDATORS = ValidatorSet(tuple(k.public_key for k in VALIDATOR_KEYS))


def built() -> tuple[Chain, Block]:
    chain = Chain()
    block, _, _ = chain.add_block([record(USER_KEYS[0], 0), record(USER_KEYS[1], 0)])
    return chain, block


def check(commit: Commit, header: Header) -> int:
    return verify_commit(commit, chain_id=CHAIN_ID, height=header.height, block_hash=header.hash, validators=VALIDATORS)


def test_block_encoding_round_trips_and_hash_is_the_header_digest() -> None:
    _, block = built()
    again = decode_block(block.encode(), chain_id=CHAIN_ID, max_block_bytes=1 << 20, max_tx_bytes=4096)
    assert again == block and again.hash == codec.digest(block.header.to_value())
    assert Header.from_value(block.header.to_value()) == block.header


def test_decode_block_names_problems() -> None:
    _, block = built()
    with pytest.raises(BlockError, match="canonical"):
        decode_block(b"\x01\x02", chain_id=CHAIN_ID, max_block_bytes=1 << 20, max_tx_bytes=4096)
    with pytest.raises(BlockError, match="transaction 0"):
        decode_block(block.encode(), chain_id="other", max_block_bytes=1 << 20, max_tx_bytes=4096)
    bad_header = codec.encode({"header": {**block.header.to_value(), "height": -1}, "txs": []})  # type: ignore[dict-item]
    with pytest.raises(BlockError, match="height"):
        decode_block(bad_header, chain_id=CHAIN_ID, max_block_bytes=1 << 20, max_tx_bytes=4096)


def test_commit_quorum_counts_distinct_members_and_stops_at_quorum() -> None:
    _, block = built()
    header = block.header
    assert check(sign_commit(header, VALIDATOR_KEYS[:3]), header) == 3
    full = sign_commit(header, VALIDATOR_KEYS)
    # A bad fourth signature is never looked at: quorum (3 of 4) is reached first.
    tail_broken = dataclasses.replace(
        full, votes=(*full.votes[:3], dataclasses.replace(full.votes[3], signature=bytes(64)))
    )
    assert check(tail_broken, header) == 3
    with pytest.raises(CommitError, match="quorum is 3 of 4"):
        check(sign_commit(header, VALIDATOR_KEYS[:2]), header)


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda c: dataclasses.replace(c, votes=(c.votes[0], c.votes[0], c.votes[1])), "two votes"),
        (
            lambda c: dataclasses.replace(
                c, votes=(dataclasses.replace(c.votes[0], signature=bytes(64)), *c.votes[1:])
            ),
            "invalid precommit",
        ),
        (lambda c: dataclasses.replace(c, height=c.height + 1), "commit is for height"),
        (
            lambda c: dataclasses.replace(
                c, votes=(dataclasses.replace(c.votes[0], kind=VoteKind.PREVOTE), *c.votes[1:])
            ),
            "not a precommit",
        ),
        (
            lambda c: dataclasses.replace(
                c, votes=(dataclasses.replace(c.votes[0], block_hash=b"\x00" * 32), *c.votes[1:])
            ),
            "another block",
        ),
    ],
)
def test_bad_commits_are_rejected(tamper: object, message: str) -> None:
    _, block = built()
    assert callable(tamper)
    with pytest.raises(CommitError, match=message):
        check(tamper(sign_commit(block.header, VALIDATOR_KEYS[:3])), block.header)


def test_votes_from_outside_the_set_do_not_count() -> None:
    _, block = built()
    commit = sign_commit(block.header, [*VALIDATOR_KEYS[:2], key(500)])
    with pytest.raises(CommitError, match="not a validator"):
        check(commit, block.header)


def test_commit_value_round_trips() -> None:
    _, block = built()
    commit = sign_commit(block.header, VALIDATOR_KEYS[:3], round_=2)
    assert Commit.from_value(codec.decode(codec.encode(commit.to_value()))) == commit
    with pytest.raises(CommitError):
        Commit.from_value({"height": 1})


@settings(max_examples=100, deadline=None)
@given(
    st.text(min_size=1, max_size=40),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**32),
    st.binary(min_size=32, max_size=32),
)
def test_signer_splice_equals_full_vote_encoding(chain_id: str, height: int, round_: int, block_hash: bytes) -> None:
    first, other = VALIDATOR_KEYS[0].public_key, VALIDATOR_KEYS[3].public_key
    template = Vote(VoteKind.PRECOMMIT, chain_id, height, round_, block_hash, first).sign_bytes()
    offset = _validator_offset(template, block_hash)
    assert template[offset : offset + 32] == first
    spliced = template[:offset] + other + template[offset + 32 :]
    assert spliced == Vote(VoteKind.PRECOMMIT, chain_id, height, round_, block_hash, other).sign_bytes()


def test_merkle_root_is_order_sensitive_and_never_duplicates_the_odd_leaf() -> None:
    a, b, c = (hashlib.sha256(bytes([i])).digest() for i in range(3))
    assert merkle_root([]) == EMPTY_ROOT
    assert merkle_root([a, b]) != merkle_root([b, a])
    assert merkle_root([a, b, c]) != merkle_root([a, b, c, c])
    assert merkle_root([a]) != a


def test_link_time_and_body_validation() -> None:
    chain, block = built()
    parent = chain.blocks[0].header
    validate_link(block.header, parent)
    with pytest.raises(BlockError, match="does not link"):
        validate_link(dataclasses.replace(block.header, parent_hash=bytes(32)), parent)
    with pytest.raises(BlockError, match="does not follow"):
        validate_link(dataclasses.replace(block.header, height=5), parent)
    with pytest.raises(BlockError, match="chain"):
        validate_link(dataclasses.replace(block.header, chain_id="x"), parent)
    with pytest.raises(BlockError, match="ahead"):
        validate_time(block.header, now_ms=block.header.time_ms - 10_000, max_drift_ms=1_000)
    validate_body(block, max_txs=10, max_bytes=1 << 20)
    with pytest.raises(BlockError, match="limit is 1"):
        validate_body(block, max_txs=1, max_bytes=1 << 20)
    with pytest.raises(BlockError, match="twice"):
        validate_body(Block(block.header, (block.txs[0], block.txs[0])), max_txs=10, max_bytes=1 << 20)
    with pytest.raises(BlockError, match="tx_root"):
        validate_body(Block(block.header, block.txs[:1]), max_txs=10, max_bytes=1 << 20)


def test_block_json_has_the_http_fields() -> None:
    chain, block = built()
    doc = block_to_json(block, chain.commits[-1])
    assert {"height", "hash", "parent_hash", "proposer", "txs", "commit"} <= set(doc)
    assert doc["hash"] == block.hash.hex() and len(doc["txs"]) == 2  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_block_bytes_raise_only_block_errors(data: bytes) -> None:
    with pytest.raises(BlockError):
        decode_block(data, chain_id=CHAIN_ID, max_block_bytes=1 << 20, max_tx_bytes=4096)


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0), st.integers(min_value=1, max_value=255))
def test_mutated_blocks_and_commits_fail_cleanly(position: int, xor: int) -> None:
    _, block = built()
    for raw, parse in (
        (block.encode(), lambda b: decode_block(b, chain_id=CHAIN_ID, max_block_bytes=1 << 20, max_tx_bytes=4096)),
        (
            codec.encode(sign_commit(block.header, VALIDATOR_KEYS[:3]).to_value()),
            lambda b: check(Commit.from_value(codec.decode(b)), block.header),
        ),
    ):
        mutated = bytearray(raw)
        mutated[position % len(raw)] ^= xor
        # Only typed rejections may escape; a mutation in an unchecked spot (a tx signature) may also parse.
        with contextlib.suppress(BlockError, codec.CodecError):
            parse(bytes(mutated))
