"""DuplicateVoteEvidence: canonical form, standalone verification and encoding round trips."""

from __future__ import annotations

import pytest

from consensus.evidence import DuplicateVoteEvidence
from consensus.messages import MessageError
from consensus.votes import Vote, VoteKind
from primitives import codec
from tests.consensus.test_machine_harness import CHAIN, make_keys, validator_set, value_of

KEYS = make_keys(4)
VALIDATORS = validator_set(KEYS)
_, A = value_of("a")
_, B = value_of("b")


def vote(i: int, block_hash: bytes | None, **changes: object) -> Vote:
    fields: dict[str, object] = {"kind": VoteKind.PRECOMMIT, "height": 5, "round": 2, "chain_id": CHAIN}
    fields.update(changes)
    unsigned = Vote(
        fields["kind"],  # type: ignore[arg-type]
        fields["chain_id"],  # type: ignore[arg-type]
        fields["height"],  # type: ignore[arg-type]
        fields["round"],  # type: ignore[arg-type]
        block_hash,
        KEYS[i].public_key,
    )
    return unsigned.signed(KEYS[i])


def test_order_is_canonical_so_every_node_reports_the_same_hash() -> None:
    one = DuplicateVoteEvidence.of(vote(1, A), vote(1, None))
    two = DuplicateVoteEvidence.of(vote(1, None), vote(1, A))
    assert one == two and one.hash() == two.hash()
    assert one.vote_a.block_hash is None
    assert (one.validator, one.height, one.round, one.kind) == (KEYS[1].public_key, 5, 2, VoteKind.PRECOMMIT)
    with pytest.raises(MessageError, match="canonical"):
        DuplicateVoteEvidence(vote(1, A), vote(1, None))


def test_encoding_round_trips_through_the_codec() -> None:
    evidence = DuplicateVoteEvidence.of(vote(2, A), vote(2, B))
    decoded = DuplicateVoteEvidence.from_value(codec.decode(codec.encode(evidence.to_value())))
    assert decoded == evidence and decoded.verify(VALIDATORS)


def test_verification_needs_both_signatures_and_membership() -> None:
    good = DuplicateVoteEvidence.of(vote(2, A), vote(2, B))
    assert good.verify() and good.verify(VALIDATORS)
    assert not good.verify(validator_set(make_keys(4, salt=1)))
    a, b = good.vote_a, good.vote_b
    forged = DuplicateVoteEvidence(
        a, Vote(b.kind, b.chain_id, b.height, b.round, b.block_hash, b.validator, a.signature)
    )
    assert not forged.verify(VALIDATORS)


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        (vote(1, A), vote(1, A), "different values"),
        (vote(1, A), vote(2, B), "share"),
        (vote(1, A), vote(1, B, round=3), "share"),
        (vote(1, A), vote(1, B, kind=VoteKind.PREVOTE), "share"),
        (vote(1, A), vote(1, B, chain_id="other"), "share"),
    ],
)
def test_votes_that_do_not_conflict_are_not_evidence(first: Vote, second: Vote, message: str) -> None:
    with pytest.raises(MessageError, match=message):
        DuplicateVoteEvidence.of(first, second)


@pytest.mark.parametrize(
    "value",
    [
        None,
        [],
        {"type": "other"},
        {"type": "duplicate_vote", "vote_a": {}, "vote_b": {}},
        {"type": "duplicate_vote", "vote_a": vote(1, A).to_value(), "vote_b": vote(1, A).to_value()},
    ],
)
def test_malformed_evidence_raises_message_error(value: codec.Value) -> None:
    with pytest.raises(MessageError):
        DuplicateVoteEvidence.from_value(value)
