"""ConsensusMachine across heights and restarts: next-height buffering, replay of our own signed messages, and
validator sets too small for any fault tolerance."""

from __future__ import annotations

import pytest

from consensus.actions import BroadcastProposal, BroadcastVote, Commit
from consensus.machine import ConsensusMachine
from consensus.messages import MessageError
from consensus.votes import Vote, VoteKind
from tests.consensus.test_machine import (
    H0,
    H1,
    KEYS,
    ME,
    V0,
    VALIDATORS,
    commits,
    feed,
    machine,
    my_votes,
    proposal,
    vote,
)
from tests.consensus.test_machine_harness import CHAIN, FakeApp, make_keys, validator_set, value_of


def test_messages_for_the_next_height_are_replayed_after_start_height() -> None:
    m = machine()
    m.on_start(0.0)
    v2, h2 = value_of("block|2|0|n2")
    early = [vote(i, VoteKind.PRECOMMIT, 0, h2, height=2) for i in (0, 1, 2)]
    assert feed(m, early) == []
    assert m.on_proposal(proposal(2, 0, h2, height=2), v2, 0.1) == []
    assert feed(m, [vote(0, VoteKind.PRECOMMIT, 0, H0, height=3)]) == []  # too far ahead: dropped
    m.on_proposal(proposal(1, 0, H0), V0, 0.2)
    feed(m, [vote(i, VoteKind.PRECOMMIT, 0, H0) for i in (0, 1, 2)])
    assert m.decision is not None
    actions = m.start_height(2, VALIDATORS, 1.0)
    [commit] = commits(actions)
    assert (commit.height, commit.value_hash) == (2, h2)
    with pytest.raises(ValueError):
        m.start_height(2, VALIDATORS, 2.0)


def test_replayed_own_vote_is_repeated_not_replaced() -> None:
    """After a restart the shell replays our signed votes first; the machine must not sign a conflicting one."""
    m = machine()
    earlier = vote(ME, VoteKind.PREVOTE, 0, H1)
    m.on_vote(earlier, 0.0)
    m.on_start(0.0)
    actions = m.on_proposal(proposal(1, 0, H0), V0, 0.1)
    assert my_votes(actions) == [earlier]


def test_next_height_buffer_keeps_only_signed_messages_from_validators_within_a_share() -> None:
    m = ConsensusMachine(
        chain_id=CHAIN, app=FakeApp("n3"), height=1, validators=VALIDATORS, key=KEYS[ME], max_buffered=8
    )
    m.on_start(0.0)
    outsider = make_keys(1, salt=98)[0]
    assert m.on_vote(Vote(VoteKind.PREVOTE, CHAIN, 2, 0, H0, outsider.public_key).signed(outsider), 0.0) == []
    with pytest.raises(MessageError, match="signature"):
        m.on_vote(Vote(VoteKind.PREVOTE, CHAIN, 2, 0, H0, KEYS[1].public_key, b"\x02" * 64), 0.0)
    # Validator 1 floods the next height with votes in many rounds: only its share (8 / 4 = 2) is kept.
    feed(m, [vote(1, VoteKind.PREVOTE, r, H0, height=2) for r in range(10)])
    feed(m, [vote(i, VoteKind.PRECOMMIT, 0, H0, height=2) for i in (0, 2)])
    m.start_height(2, VALIDATORS, 1.0)
    held = m.votes()
    assert sum(v.validator == KEYS[1].public_key for v in held) == 2
    assert {v.validator for v in held if v.kind is VoteKind.PRECOMMIT} == {KEYS[0].public_key, KEYS[2].public_key}
    assert all(v.validator != outsider.public_key for v in held)


def test_replayed_own_proposal_is_repeated_not_replaced() -> None:
    m = machine(key_index=1, app=FakeApp("n1"))
    old, old_hash = value_of("block|1|0|before-restart")
    earlier = proposal(1, 0, old_hash)
    m.on_proposal(earlier, old, 0.0)
    actions = m.on_start(0.0)
    assert [a for a in actions if isinstance(a, BroadcastProposal)] == [BroadcastProposal(earlier, old)]
    assert [v.block_hash for v in my_votes(actions)] == [old_hash]


@pytest.mark.parametrize("n", [1, 2, 3])
def test_small_validator_sets_work_with_their_quorums(n: int) -> None:
    keys = make_keys(n, salt=n)
    validators = validator_set(keys)
    machines = [
        ConsensusMachine(chain_id=CHAIN, app=FakeApp(f"n{i}"), height=1, validators=validators, key=keys[i])
        for i in range(n)
    ]
    pending = [(i, a) for i, m in enumerate(machines) for a in m.on_start(0.0)]
    decided: dict[int, Commit] = {}
    while pending:  # deliver every broadcast to every other machine, in order
        source, action = pending.pop(0)
        if isinstance(action, Commit):
            decided[source] = action
        for target, m in enumerate(machines):
            if target == source:
                continue
            if isinstance(action, BroadcastProposal):
                pending += [(target, a) for a in m.on_proposal(action.proposal, action.value, 0.0)]
            elif isinstance(action, BroadcastVote):
                pending += [(target, a) for a in m.on_vote(action.vote, 0.0)]
    assert sorted(decided) == list(range(n))
    assert len({c.value_hash for c in decided.values()}) == 1
    assert all(len(c.precommits) == n for c in decided.values())  # the quorum of 1, 2 or 3 is everyone
