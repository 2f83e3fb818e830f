"""ConsensusBatch: the gossip payload for proposals and votes round-trips and refuses bad input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.errors import LedgerError
from consensus.gossip_batch import ConsensusBatch, ProposalMessage
from consensus.messages import MessageError
from consensus.proposal import Proposal
from consensus.votes import Vote, VoteKind
from primitives import codec
from tests.consensus.test_machine_harness import CHAIN, make_keys, value_of

KEYS = make_keys(2)
VALUE, HASH = value_of("block|1|0|n1")


def sample() -> ConsensusBatch:
    proposal = Proposal(CHAIN, 1, 0, -1, HASH, KEYS[0].public_key).signed(KEYS[0])
    votes = tuple(
        Vote(kind, CHAIN, 1, 0, block_hash, KEYS[1].public_key).signed(KEYS[1])
        for kind, block_hash in ((VoteKind.PREVOTE, HASH), (VoteKind.PRECOMMIT, None))
    )
    return ConsensusBatch((ProposalMessage(proposal, VALUE), ProposalMessage(proposal, None)), votes)


def test_round_trip() -> None:
    batch = sample()
    decoded = ConsensusBatch.decode(batch.encode())
    assert decoded == batch and len(decoded) == 4
    assert decoded.proposals[0].proposal.verify() and all(v.verify() for v in decoded.votes)


def test_limits_are_enforced() -> None:
    data = sample().encode()
    with pytest.raises(MessageError, match="exceeds"):
        ConsensusBatch.decode(data, max_bytes=len(data) - 1)
    with pytest.raises(MessageError, match="more than 3"):
        ConsensusBatch.decode(data, max_items=3)


@pytest.mark.parametrize(
    "value",
    [
        [],
        {"votes": []},
        {"proposals": [], "votes": [], "extra": 1},
        {"proposals": [{"proposal": {}, "value": None}], "votes": []},
        {"proposals": [], "votes": [{"kind": 3}]},
        {"proposals": [7], "votes": []},
    ],
)
def test_malformed_batches_raise_message_error(value: codec.Value) -> None:
    with pytest.raises(MessageError):
        ConsensusBatch.decode(codec.encode(value))


def test_message_error_is_part_of_the_ledger_error_tree() -> None:
    assert issubclass(MessageError, LedgerError) and issubclass(MessageError, ValueError)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_crash_the_decoder(data: bytes) -> None:
    try:
        batch = ConsensusBatch.decode(data)
    except MessageError:
        return
    assert batch.encode() == data  # whatever decodes is canonical: one meaning, one byte string


def test_a_whole_value_is_flagged_and_the_flag_is_checked() -> None:
    # A re-proposal travels whole ("full"); without the flag the bytes of an ordinary batch are unchanged.
    reproposal = Proposal(CHAIN, 1, 2, 0, HASH, KEYS[0].public_key).signed(KEYS[0])
    batch = ConsensusBatch((ProposalMessage(reproposal, VALUE, full=True),))
    decoded = ConsensusBatch.decode(batch.encode())
    assert decoded == batch and decoded.proposals[0].full
    plain = codec.decode(sample().encode())
    assert isinstance(plain, dict) and isinstance(plain["proposals"], list)
    assert all(isinstance(p, dict) and "full" not in p for p in plain["proposals"])

    entry = {"proposal": reproposal.to_value(), "value": VALUE, "full": True}
    for bad in ({**entry, "full": 1}, {**entry, "value": None}):
        with pytest.raises(MessageError, match="full"):
            ConsensusBatch.decode(codec.encode({"proposals": [bad], "votes": []}))
