"""An equivocator's third vote: ignored while unbacked (memory bound), counted once f + 1 back its value (liveness).

Regression for a liveness failure found by `test_liveness_after_gst_under_random_schedules`: a vote set kept
only the first two votes of an equivocating validator. A Byzantine validator that signs three values in one
round lets honest nodes keep different pairs; a quorum that one honest node counted (a commit, or a lock on
a proof-of-lock round) then included a vote another honest node had thrown away for good, so that node could
never count it, and — the deciders having stopped voting, or the lockers refusing anything else — never
decided. Four validators, height 1: the proposer of round r is member (1 + r) mod 4; member 0 is Byzantine.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.actions import Action, BroadcastVote, Commit, RecordEvidence
from consensus.machine import ConsensusMachine
from consensus.proposal import Proposal
from consensus.timeouts import Step, Timeout
from consensus.votes import Vote, VoteKind, max_faulty
from consensus.voteset import AddOutcome, VoteSet
from tests.consensus.test_machine_harness import CHAIN, FAST, FakeApp, make_keys, validator_set, value_of

KEYS = make_keys(4)
VALIDATORS = validator_set(KEYS)
ME, BYZANTINE = 3, 0
V0, H0 = value_of("block|1|0|n1")
_, JUNK_A = value_of("junk-a")
_, JUNK_B = value_of("junk-b")
_, JUNK_C = value_of("junk-c")


def machine() -> ConsensusMachine:
    return ConsensusMachine(
        chain_id=CHAIN, app=FakeApp("n3"), height=1, validators=VALIDATORS, key=KEYS[ME], params=FAST
    )


def vote(i: int, kind: VoteKind, block_hash: bytes | None, round_: int = 0) -> Vote:
    return Vote(kind, CHAIN, 1, round_, block_hash, KEYS[i].public_key).signed(KEYS[i])


def proposal_round0() -> Proposal:
    return Proposal(CHAIN, 1, 0, -1, H0, KEYS[1].public_key).signed(KEYS[1])


def feed(m: ConsensusMachine, votes: list[Vote], now: float = 0.5) -> list[Action]:
    out: list[Action] = []
    for v in votes:
        out += m.on_vote(v, now)
    return out


def test_a_commit_that_needs_the_equivocators_third_precommit_is_reached() -> None:
    m = machine()
    m.on_start(0.0)
    m.on_proposal(proposal_round0(), V0, 0.1)
    # The equivocator's first two precommits fill its slots; its precommit for v arrives before any backing.
    actions = feed(m, [vote(BYZANTINE, VoteKind.PRECOMMIT, h) for h in (JUNK_A, JUNK_B, H0)])
    assert [v.block_hash for v in m.votes() if v.validator == KEYS[BYZANTINE].public_key] == [JUNK_A, JUNK_B]
    actions += feed(m, [vote(i, VoteKind.PRECOMMIT, H0) for i in (1, 2)])
    assert not any(isinstance(a, Commit) for a in actions), "2 of 4 precommits are no quorum"
    # Re-gossip brings the third precommit again; f + 1 = 2 honest validators back v now, so it counts.
    actions += m.on_vote(vote(BYZANTINE, VoteKind.PRECOMMIT, H0), 1.0)
    commits = [a for a in actions if isinstance(a, Commit)]
    assert len(commits) == 1 and commits[0].value == V0 and commits[0].round == 0
    assert {v.validator for v in commits[0].precommits} == {KEYS[i].public_key for i in (0, 1, 2)}
    assert all(v.verify() and v.block_hash == H0 for v in commits[0].precommits)
    evidence = [a for a in actions if isinstance(a, RecordEvidence)]
    assert len(evidence) == 1, "the equivocation is reported once, not again for the third vote"


def test_a_lock_that_needs_the_equivocators_third_prevote_is_taken() -> None:
    m = machine()
    m.on_start(0.0)
    m.on_timeout(Timeout(1, 0, Step.PROPOSE), FAST.propose)  # no proposal in time: prevote nil (lines 57–60)
    feed(m, [vote(BYZANTINE, VoteKind.PREVOTE, h) for h in (JUNK_A, JUNK_B)])
    feed(m, [vote(i, VoteKind.PREVOTE, H0) for i in (1, 2)])
    m.on_proposal(proposal_round0(), V0, 1.1)  # late, but line 36 still applies while step ≥ prevote
    assert m.locked_round == -1, "the prevotes of 1 and 2 alone are no quorum"
    actions = m.on_vote(vote(BYZANTINE, VoteKind.PREVOTE, H0), 1.2)
    precommits = [a.vote for a in actions if isinstance(a, BroadcastVote) and a.vote.kind is VoteKind.PRECOMMIT]
    assert [v.block_hash for v in precommits] == [H0]
    assert (m.locked_round, m.locked_value, m.valid_round) == (0, H0, 0)


def test_an_unbacked_third_value_is_not_stored() -> None:
    m = machine()
    m.on_start(0.0)
    feed(m, [vote(BYZANTINE, VoteKind.PREVOTE, h) for h in (JUNK_A, JUNK_B, JUNK_C)])
    feed(m, [vote(1, VoteKind.PREVOTE, JUNK_C)])  # one backer is f, not f + 1: could be faulty itself
    m.on_vote(vote(BYZANTINE, VoteKind.PREVOTE, JUNK_C), 0.6)
    held = [v.block_hash for v in m.votes() if v.validator == KEYS[BYZANTINE].public_key]
    assert held == [JUNK_A, JUNK_B]


N = 7
KEYS7 = make_keys(N, salt=9)
VALIDATORS7 = validator_set(KEYS7)
VALUES = [value_of(f"v{i}")[1] for i in range(5)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, N - 1), st.sampled_from([*VALUES, None])), max_size=60))
def test_backed_votes_keep_tallies_safe_and_memory_bounded(script: list[tuple[int, bytes | None]]) -> None:
    s = VoteSet(CHAIN, 1, 0, VoteKind.PREVOTE, VALIDATORS7)
    f = max_faulty(N)
    for i, value in script:
        before = s.count(value)
        held_before = len([v for v in s.votes() if v.validator == KEYS7[i].public_key])
        vote_ = Vote(VoteKind.PREVOTE, CHAIN, 1, 0, value, KEYS7[i].public_key)  # unsigned: VoteSet never checks
        outcome = s.add(vote_, admit_backed=True).outcome
        if outcome is AddOutcome.BACKED:
            assert held_before >= 2 and before >= f + 1, "a third value only with f + 1 backers"
        if outcome is AddOutcome.IGNORED:
            assert held_before >= 2 and before <= f
    # Values with f + 1 voters are built from at most two free slots per validator: ≤ 2n / (f + 1) of them.
    backed = [value for value in (*VALUES, None) if s.count(value) >= f + 1]
    assert len(backed) <= 2 * N // (f + 1)
    for key in VALIDATORS7.members:
        assert len([v for v in s.votes() if v.validator == key]) <= 2 + len(backed)


def test_the_third_vote_counts_whatever_order_it_comes_in() -> None:
    # Every delivery order of the same votes (with the third vote re-sent at the end, as gossip does) gives the
    # same tally, so honest nodes that saw the same messages agree on quorums.
    votes = [vote(BYZANTINE, VoteKind.PRECOMMIT, h) for h in (JUNK_A, JUNK_B, H0)]
    votes += [vote(i, VoteKind.PRECOMMIT, H0) for i in (1, 2)]
    for seed in range(20):
        order = random.Random(seed).sample(votes, len(votes))
        s = VoteSet(CHAIN, 1, 0, VoteKind.PRECOMMIT, VALIDATORS)
        for v in [*order, votes[2]]:
            s.add(v, admit_backed=True)
        assert s.count(H0) == 3 and s.has_quorum(H0)
