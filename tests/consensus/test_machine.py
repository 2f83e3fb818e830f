"""Scripted tests of one ConsensusMachine: hand-made signed messages in, actions checked out.

Four validators, height 1, so the proposer of round r is member (1 + r) mod 4: round 0 → 1, round 1 → 2,
round 2 → 3 (the node under test), round 3 → 0.
"""

from __future__ import annotations

import pytest

from consensus.actions import (
    Action,
    BroadcastProposal,
    BroadcastVote,
    Commit,
    RecordEvidence,
    RequestValue,
    ScheduleTimeout,
)
from consensus.machine import ConsensusMachine
from consensus.messages import MessageError
from consensus.proposal import Proposal
from consensus.timeouts import Step, Timeout, TimeoutParams
from consensus.votes import Vote, VoteKind
from tests.consensus.test_machine_harness import CHAIN, FakeApp, make_keys, validator_set, value_of

KEYS = make_keys(4)
VALIDATORS = validator_set(KEYS)
ME = 3
PARAMS = TimeoutParams(
    propose=3.0, propose_delta=0.5, prevote=1.0, prevote_delta=0.5, precommit=1.0, precommit_delta=0.5
)
V0, H0 = value_of("block|1|0|n1")
V1, H1 = value_of("block|1|1|n2")


def machine(key_index: int | None = ME, app: FakeApp | None = None, height: int = 1) -> ConsensusMachine:
    return ConsensusMachine(
        chain_id=CHAIN,
        app=app or FakeApp("n3"),
        height=height,
        validators=VALIDATORS,
        key=None if key_index is None else KEYS[key_index],
        params=PARAMS,
    )


def vote(i: int, kind: VoteKind, round_: int, block_hash: bytes | None, height: int = 1) -> Vote:
    return Vote(kind, CHAIN, height, round_, block_hash, KEYS[i].public_key).signed(KEYS[i])


def proposal(i: int, round_: int, value_hash: bytes, pol_round: int = -1, height: int = 1) -> Proposal:
    return Proposal(CHAIN, height, round_, pol_round, value_hash, KEYS[i].public_key).signed(KEYS[i])


def my_votes(actions: list[Action], kind: VoteKind | None = None) -> list[Vote]:
    found = [a.vote for a in actions if isinstance(a, BroadcastVote)]
    return [v for v in found if kind is None or v.kind is kind]


def timeouts(actions: list[Action]) -> list[ScheduleTimeout]:
    return [a for a in actions if isinstance(a, ScheduleTimeout)]


def commits(actions: list[Action]) -> list[Commit]:
    return [a for a in actions if isinstance(a, Commit)]


def feed(m: ConsensusMachine, votes: list[Vote], now: float = 0.0) -> list[Action]:
    out: list[Action] = []
    for v in votes:
        out += m.on_vote(v, now)
    return out


def test_non_proposer_schedules_the_propose_timeout_on_start() -> None:
    actions = machine().on_start(10.0)
    assert actions == [ScheduleTimeout(Timeout(1, 0, Step.PROPOSE), 13.0)]


def test_proposer_proposes_and_prevotes_its_own_value() -> None:
    m = machine(key_index=1, app=FakeApp("n1"))
    actions = m.on_start(0.0)
    proposals = [a for a in actions if isinstance(a, BroadcastProposal)]
    assert len(proposals) == 1
    p = proposals[0].proposal
    assert (p.height, p.round, p.pol_round, p.value_hash) == (1, 0, -1, H0)
    assert p.verify() and proposals[0].value == V0
    assert [v.block_hash for v in my_votes(actions, VoteKind.PREVOTE)] == [H0]
    assert m.step is Step.PREVOTE


def test_happy_path_commits_with_a_quorum_of_precommits() -> None:
    m = machine()
    m.on_start(0.0)
    actions = m.on_proposal(proposal(1, 0, H0), V0, 0.1)
    assert [v.block_hash for v in my_votes(actions)] == [H0]
    actions = feed(m, [vote(1, VoteKind.PREVOTE, 0, H0), vote(2, VoteKind.PREVOTE, 0, H0)], 0.2)
    assert [(v.kind, v.block_hash) for v in my_votes(actions)] == [(VoteKind.PRECOMMIT, H0)]
    assert (m.locked_value, m.locked_round, m.valid_value, m.valid_round) == (H0, 0, H0, 0)
    actions = feed(m, [vote(1, VoteKind.PRECOMMIT, 0, H0)], 0.3)
    assert commits(actions) == []
    actions = feed(m, [vote(2, VoteKind.PRECOMMIT, 0, H0)], 0.4)
    [commit] = commits(actions)
    assert (commit.height, commit.round, commit.value_hash, commit.value) == (1, 0, H0, V0)
    assert len(commit.precommits) == 3 and all(v.verify() and v.block_hash == H0 for v in commit.precommits)
    assert m.decision == commit
    # Once decided, nothing more is signed at this height, and late messages are still counted quietly.
    assert feed(m, [vote(0, VoteKind.PRECOMMIT, 0, H0)], 0.5) == []
    assert m.on_timeout(Timeout(1, 0, Step.PRECOMMIT), 9.0) == []


def test_invalid_value_gets_a_nil_prevote() -> None:
    bad, bad_hash = value_of("bad|1|0")
    m = machine()
    m.on_start(0.0)
    actions = m.on_proposal(proposal(1, 0, bad_hash), bad, 0.1)
    assert [v.block_hash for v in my_votes(actions)] == [None]


def test_propose_timeout_prevotes_nil_and_prevote_timeout_precommits_nil() -> None:
    m = machine()
    m.on_start(0.0)
    actions = m.on_timeout(Timeout(1, 0, Step.PROPOSE), 3.0)
    assert [(v.kind, v.block_hash) for v in my_votes(actions)] == [(VoteKind.PREVOTE, None)]
    # Line 34: a quorum of prevotes for different things starts the prevote timeout (1.0 s in round 0).
    actions = feed(m, [vote(1, VoteKind.PREVOTE, 0, H0), vote(2, VoteKind.PREVOTE, 0, H1)], 3.5)
    assert timeouts(actions) == [ScheduleTimeout(Timeout(1, 0, Step.PREVOTE), 4.5)]
    actions = m.on_timeout(Timeout(1, 0, Step.PREVOTE), 4.5)
    assert [(v.kind, v.block_hash) for v in my_votes(actions)] == [(VoteKind.PRECOMMIT, None)]
    # A stale timeout from another step or round changes nothing.
    assert m.on_timeout(Timeout(1, 0, Step.PROPOSE), 5.0) == []


def test_timeouts_grow_with_the_round() -> None:
    m = machine()
    m.on_start(0.0)
    for round_ in range(3):
        m.on_timeout(Timeout(1, round_, Step.PROPOSE), 0.0)
        feed(m, [vote(i, VoteKind.PRECOMMIT, round_, None) for i in (0, 1)])
        actions = m.on_timeout(Timeout(1, round_, Step.PRECOMMIT), 100.0)
        assert m.round == round_ + 1
        expected_at = 100.0 + 3.0 + 0.5 * (round_ + 1)
        if VALIDATORS.proposer(1, round_ + 1) != KEYS[ME].public_key:
            assert timeouts(actions) == [ScheduleTimeout(Timeout(1, round_ + 1, Step.PROPOSE), expected_at)]
    assert PARAMS.duration(Step.PRECOMMIT, 4) == 3.0 and PARAMS.duration(Step.PREVOTE, 2) == 2.0


def test_locked_value_is_kept_across_rounds_and_reproposed() -> None:
    m = machine()
    m.on_start(0.0)
    # Round 0: we prevote V0 and see a quorum of prevotes for it, so we lock on V0 (lines 36–43).
    m.on_proposal(proposal(1, 0, H0), V0, 0.1)
    feed(m, [vote(1, VoteKind.PREVOTE, 0, H0), vote(2, VoteKind.PREVOTE, 0, H0)])
    assert (m.locked_value, m.locked_round) == (H0, 0)
    # The precommits do not reach a quorum for V0; the precommit timeout moves us to round 1.
    feed(m, [vote(1, VoteKind.PRECOMMIT, 0, None), vote(2, VoteKind.PRECOMMIT, 0, None)])
    m.on_timeout(Timeout(1, 0, Step.PRECOMMIT), 2.0)
    assert m.round == 1
    # Round 1: a fresh proposal of another value. Locked on V0, we prevote nil (line 26).
    actions = m.on_proposal(proposal(2, 1, H1), V1, 2.1)
    assert [v.block_hash for v in my_votes(actions, VoteKind.PREVOTE)] == [None]
    assert (m.locked_value, m.locked_round) == (H0, 0)
    feed(m, [vote(i, VoteKind.PREVOTE, 1, None) for i in (0, 1)])
    feed(m, [vote(i, VoteKind.PRECOMMIT, 1, None) for i in (0, 1)])
    # Round 2: we are the proposer, and re-propose our valid value V0 with pol_round 0 (lines 15–16, 19).
    actions = m.on_timeout(Timeout(1, 1, Step.PRECOMMIT), 5.0)
    [broadcast] = [a for a in actions if isinstance(a, BroadcastProposal)]
    assert (broadcast.proposal.round, broadcast.proposal.value_hash, broadcast.proposal.pol_round) == (2, H0, 0)
    assert broadcast.value == V0
    assert [v.block_hash for v in my_votes(actions, VoteKind.PREVOTE)] == [H0]


def test_a_lock_is_released_only_by_a_newer_quorum_of_prevotes() -> None:
    m = machine()
    m.on_start(0.0)
    m.on_proposal(proposal(1, 0, H0), V0, 0.1)
    feed(m, [vote(1, VoteKind.PREVOTE, 0, H0), vote(2, VoteKind.PREVOTE, 0, H0)])
    feed(m, [vote(i, VoteKind.PRECOMMIT, 0, None) for i in (1, 2)])
    m.on_timeout(Timeout(1, 0, Step.PRECOMMIT), 2.0)
    # Round 1: others saw a quorum of prevotes for V1 in round 1 that we missed at the time.
    m.on_timeout(Timeout(1, 1, Step.PROPOSE), 5.0)
    feed(m, [vote(i, VoteKind.PREVOTE, 1, H1) for i in (0, 1, 2)])
    feed(m, [vote(i, VoteKind.PRECOMMIT, 1, None) for i in (0, 1)])
    m.on_timeout(Timeout(1, 1, Step.PRECOMMIT), 6.0)
    assert m.round == 2 and m.locked_round == 0
    # Round 3 (proposer 0) re-proposes V1 with pol_round 1 > our locked round 0: line 30 lets us prevote it.
    feed(m, [vote(i, VoteKind.PRECOMMIT, 2, None) for i in (0, 1)])
    m.on_timeout(Timeout(1, 2, Step.PROPOSE), 7.0)
    m.on_timeout(Timeout(1, 2, Step.PRECOMMIT), 8.0)
    assert m.round == 3
    actions = m.on_proposal(proposal(0, 3, H1, pol_round=1), V1, 8.1)
    assert [v.block_hash for v in my_votes(actions, VoteKind.PREVOTE)] == [H1]


def test_reproposal_with_an_unbacked_pol_round_waits_then_prevotes_nil() -> None:
    m = machine()
    m.on_start(0.0)
    m.on_proposal(proposal(1, 0, H0), V0, 0.1)
    feed(m, [vote(1, VoteKind.PREVOTE, 0, H0), vote(2, VoteKind.PREVOTE, 0, H0)])
    feed(m, [vote(i, VoteKind.PRECOMMIT, 0, None) for i in (1, 2)])
    m.on_timeout(Timeout(1, 0, Step.PRECOMMIT), 2.0)
    # Round 1 proposer claims V1 was prevoted by a quorum in round 0; we hold no such quorum, so line 28 waits.
    actions = m.on_proposal(proposal(2, 1, H1, pol_round=0), V1, 2.1)
    assert my_votes(actions) == []
    actions = m.on_timeout(Timeout(1, 1, Step.PROPOSE), 5.5)
    assert [v.block_hash for v in my_votes(actions)] == [None]


def test_equivocation_becomes_evidence_once() -> None:
    m = machine()
    m.on_start(0.0)
    first, second = vote(1, VoteKind.PREVOTE, 0, H0), vote(1, VoteKind.PREVOTE, 0, H1)
    assert feed(m, [first]) == []
    actions = feed(m, [second, first, second])
    [record] = [a for a in actions if isinstance(a, RecordEvidence)]
    evidence = record.evidence
    assert {evidence.vote_a, evidence.vote_b} == {first, second}
    assert evidence.validator == KEYS[1].public_key and evidence.verify(VALIDATORS)
    # A third value from the same validator is ignored and produces no second report.
    assert feed(m, [vote(1, VoteKind.PREVOTE, 0, None)]) == []


def test_votes_below_a_quorum_never_commit() -> None:
    m = machine(key_index=None)  # an observer, so only the two fed precommits exist
    m.on_start(0.0)
    m.on_proposal(proposal(1, 0, H0), V0, 0.1)
    actions = feed(m, [vote(i, VoteKind.PRECOMMIT, 0, H0) for i in (1, 2)])
    actions += feed(m, [vote(0, VoteKind.PRECOMMIT, 0, H1)])
    assert commits(actions) == [] and m.decision is None
    # The third precommit for V0 makes the quorum.
    assert len(commits(feed(m, [vote(3, VoteKind.PRECOMMIT, 0, H0)]))) == 1


def test_an_observer_follows_without_signing() -> None:
    m = machine(key_index=None)
    actions = m.on_start(0.0)
    actions += m.on_proposal(proposal(1, 0, H0), V0, 0.1)
    actions += feed(m, [vote(i, VoteKind.PREVOTE, 0, H0) for i in (0, 1, 2)])
    actions += feed(m, [vote(i, VoteKind.PRECOMMIT, 0, H0) for i in (0, 1, 2)])
    assert my_votes(actions) == []
    assert len(commits(actions)) == 1


def test_late_precommits_for_a_past_round_commit() -> None:
    m = machine()
    m.on_start(0.0)
    m.on_proposal(proposal(1, 0, H0), V0, 0.1)
    actions = m.on_timeout(Timeout(1, 0, Step.PREVOTE), 1.0)  # we missed the prevotes: precommit nil
    assert [(v.kind, v.block_hash) for v in my_votes(actions)] == [(VoteKind.PRECOMMIT, None)]
    actions = feed(m, [vote(i, VoteKind.PRECOMMIT, 0, H0) for i in (1, 2)], 1.5)
    assert m.decision is None
    assert timeouts(actions) == [ScheduleTimeout(Timeout(1, 0, Step.PRECOMMIT), 2.5)]
    m.on_timeout(Timeout(1, 0, Step.PRECOMMIT), 2.5)
    assert m.round == 1
    # The missing precommit of round 0 arrives while we are in round 1: the past round still decides.
    [commit] = commits(feed(m, [vote(0, VoteKind.PRECOMMIT, 0, H0)], 3.0))
    assert (commit.round, commit.value_hash, len(commit.precommits)) == (0, H0, 3)


def test_quorum_for_an_unknown_value_requests_it_then_commits() -> None:
    m = machine()
    m.on_start(0.0)
    actions = feed(m, [vote(i, VoteKind.PRECOMMIT, 0, H0) for i in (0, 1, 2)])
    assert [a for a in actions if isinstance(a, RequestValue)] == [RequestValue(1, H0)]
    assert commits(actions) == []
    with pytest.raises(MessageError):
        m.on_value(H0, b"not the value", 1.0)
    [commit] = commits(m.on_value(H0, V0, 1.0))
    assert commit.value == V0


def test_proposal_with_a_mismatched_value_keeps_the_proposal_and_fetches_the_value() -> None:
    m = machine()
    m.on_start(0.0)
    actions = m.on_proposal(proposal(1, 0, H0), b"tampered by a relay", 0.1)
    assert actions == [RequestValue(1, H0)]
    actions = m.on_value(H0, V0, 0.2)
    assert [v.block_hash for v in my_votes(actions)] == [H0]


def test_f_plus_one_messages_from_a_higher_round_skip_ahead() -> None:
    m = machine()
    m.on_start(0.0)
    assert feed(m, [vote(0, VoteKind.PREVOTE, 5, None)]) == []
    assert m.round == 0
    actions = feed(m, [vote(1, VoteKind.PRECOMMIT, 5, None)])
    assert m.round == 5 and m.step is Step.PROPOSE
    assert timeouts(actions)[0].timeout == Timeout(1, 5, Step.PROPOSE)


def test_bad_messages_raise_message_error() -> None:
    m = machine()
    m.on_start(0.0)
    outsider = make_keys(1, salt=99)[0]
    with pytest.raises(MessageError, match="not a validator"):
        m.on_vote(Vote(VoteKind.PREVOTE, CHAIN, 1, 0, H0, outsider.public_key).signed(outsider), 0.0)
    forged = Vote(VoteKind.PREVOTE, CHAIN, 1, 0, H0, KEYS[1].public_key, signature=b"\x00" * 64)
    with pytest.raises(MessageError, match="signature"):
        m.on_vote(forged, 0.0)
    with pytest.raises(MessageError, match="chain"):
        m.on_vote(Vote(VoteKind.PREVOTE, "other", 1, 0, H0, KEYS[1].public_key).signed(KEYS[1]), 0.0)
    with pytest.raises(MessageError, match="proposer"):
        m.on_proposal(proposal(2, 0, H0), V0, 0.0)
    with pytest.raises(MessageError, match="signature"):
        m.on_proposal(Proposal(CHAIN, 1, 0, -1, H0, KEYS[1].public_key, b"\x01" * 64), V0, 0.0)
    # A caller that pre-verified signatures can skip the check (here: wrongly, to show it is skipped).
    assert m.on_vote(forged, 0.0, verified=True) == []
    assert len(m.votes()) == 1


def test_validity_is_checked_once_per_value() -> None:
    app = FakeApp("n3")
    m = machine(app=app)
    m.on_start(0.0)
    m.on_proposal(proposal(1, 0, H0), V0, 0.1)
    feed(m, [vote(i, VoteKind.PREVOTE, 0, H0) for i in (0, 1, 2)])
    feed(m, [vote(i, VoteKind.PRECOMMIT, 0, H0) for i in (0, 1, 2)])
    assert m.decision is not None and app.validations == 1
