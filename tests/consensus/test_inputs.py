"""Consensus inputs as data (consensus/inputs.py): each kind reads back from its canonical encoding as the same
value, bad encodings are refused with the field named, and `ConsensusMachine.feed` does what the per-kind
methods do."""

from __future__ import annotations

import pytest

from consensus.actions import BroadcastProposal, Commit
from consensus.inputs import (
    ConsensusInput,
    ReceiveProposal,
    ReceiveValue,
    ReceiveVote,
    Start,
    StartHeight,
    TimeoutExpired,
    decode_input,
    describe,
    encode_input,
)
from consensus.machine import ConsensusMachine
from consensus.proposal import Proposal
from consensus.timeouts import Step, Timeout
from consensus.votes import Vote, VoteKind
from primitives import codec
from tests.consensus.test_machine_harness import CHAIN, FAST, FakeApp, make_keys, validator_set, value_of

KEYS = make_keys(4)
VALIDATORS = validator_set(KEYS)
VALUE, VALUE_HASH = value_of("block|1|0|a")


def every_kind() -> list[ConsensusInput]:
    proposal = Proposal(CHAIN, 1, 0, -1, VALUE_HASH, KEYS[1].public_key).signed(KEYS[1])
    vote = Vote(VoteKind.PRECOMMIT, CHAIN, 1, 0, VALUE_HASH, KEYS[2].public_key).signed(KEYS[2])
    nil = Vote(VoteKind.PREVOTE, CHAIN, 1, 2, None, KEYS[3].public_key).signed(KEYS[3])
    return [
        Start(),
        StartHeight(7, VALIDATORS),
        ReceiveProposal(proposal, VALUE),
        ReceiveProposal(proposal, None, verified=True),
        ReceiveVote(vote),
        ReceiveVote(nil, verified=True),
        ReceiveValue(VALUE_HASH, VALUE),
        TimeoutExpired(Timeout(3, 1, Step.PREVOTE)),
    ]


@pytest.mark.parametrize("item", every_kind(), ids=lambda item: type(item).__name__)
def test_each_input_reads_back_from_its_canonical_bytes(item: ConsensusInput) -> None:
    data = codec.encode(encode_input(item))
    assert decode_input(codec.decode(data)) == item
    assert codec.encode(encode_input(decode_input(codec.decode(data)))) == data
    assert "<lambda>" not in repr(item) and describe(item)


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ({"t": "nonsense"}, "unknown consensus input kind"),
        ([1, 2], "not a map"),
        ({"t": "timeout", "step": 9, "round": 0, "height": 1}, "step"),
        ({"t": "value", "hash": b"short", "value": b"x"}, "hash"),
        ({"t": "start_height", "height": 2, "validators": "everyone"}, "validators"),
        ({"t": "vote", "vote": {"kind": 1}, "verified": False}, "vote"),
    ],
)
def test_a_malformed_input_is_refused_naming_the_field(value: codec.Value, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        decode_input(value)


def machine(index: int = 0) -> ConsensusMachine:
    return ConsensusMachine(
        chain_id=CHAIN, app=FakeApp(str(index)), height=1, validators=VALIDATORS, key=KEYS[index], params=FAST
    )


def test_feed_drives_the_machine_as_the_per_kind_methods_do() -> None:
    by_feed, by_method = machine(), machine()
    proposal = Proposal(CHAIN, 1, 0, -1, VALUE_HASH, KEYS[1].public_key).signed(KEYS[1])
    precommits = [Vote(VoteKind.PRECOMMIT, CHAIN, 1, 0, VALUE_HASH, k.public_key).signed(k) for k in KEYS[1:]]
    fed = by_feed.feed(Start(), 0.0) + by_feed.feed(ReceiveProposal(proposal, VALUE), 0.1)
    called = by_method.on_start(0.0) + by_method.on_proposal(proposal, VALUE, 0.1)
    for vote in precommits:
        fed += by_feed.feed(ReceiveVote(vote), 0.2)
        called += by_method.on_vote(vote, 0.2)
    assert fed == called
    assert any(isinstance(a, Commit) and a.value_hash == VALUE_HASH for a in fed)
    moved = by_feed.feed(StartHeight(2, VALIDATORS), 0.3)
    assert moved == by_method.start_height(2, VALIDATORS, 0.3)
    assert by_feed.height == 2 and moved  # key 0 is not height 2's proposer: it waits with a propose timeout
    assert not any(isinstance(a, BroadcastProposal) for a in moved)
