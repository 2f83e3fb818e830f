"""VoteSet counting: distinct validators, duplicates, equivocation, quorum thresholds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.votes import Vote, VoteKind
from consensus.voteset import AddOutcome, HeightVotes, VoteSet
from tests.consensus.test_machine_harness import CHAIN, make_keys, validator_set, value_of

KEYS = make_keys(7)
VALIDATORS = validator_set(KEYS)  # 7 validators: quorum 5
_, A = value_of("a")
_, B = value_of("b")


def vote(i: int, block_hash: bytes | None, round_: int = 0, kind: VoteKind = VoteKind.PREVOTE) -> Vote:
    return Vote(kind, CHAIN, 1, round_, block_hash, KEYS[i].public_key).signed(KEYS[i])


def fresh() -> VoteSet:
    return VoteSet(CHAIN, 1, 0, VoteKind.PREVOTE, VALIDATORS)


def test_quorum_needs_five_distinct_validators_of_seven() -> None:
    s = fresh()
    for i in range(4):
        assert s.add(vote(i, A)).outcome is AddOutcome.ADDED
        assert s.add(vote(i, A)).outcome is AddOutcome.DUPLICATE
    assert s.count(A) == 4 and not s.has_quorum(A) and s.quorum_values() == []
    s.add(vote(4, None))
    assert s.total == 5 and s.has_quorum_any() and not s.has_quorum(None)
    s.add(vote(5, A))
    assert s.has_quorum(A) and s.quorum_values() == [A]
    assert [v.validator for v in s.votes_for(A)] == [KEYS[i].public_key for i in (0, 1, 2, 3, 5)]


def test_equivocation_yields_evidence_counts_both_and_ignores_a_third_value() -> None:
    s = fresh()
    s.add(vote(0, A))
    result = s.add(vote(0, B))
    assert result.outcome is AddOutcome.CONFLICT and result.evidence is not None
    assert result.evidence.verify(VALIDATORS)
    assert (s.count(A), s.count(B), s.total) == (1, 1, 1)
    assert s.add(vote(0, None)).outcome is AddOutcome.IGNORED
    assert s.add(vote(0, B)).outcome is AddOutcome.DUPLICATE
    assert s.count(None) == 0 and len(s.votes()) == 2


def test_votes_of_another_slot_or_outsiders_are_refused() -> None:
    s = fresh()
    with pytest.raises(ValueError, match="belong"):
        s.add(vote(0, A, round_=1))
    with pytest.raises(ValueError, match="belong"):
        s.add(vote(0, A, kind=VoteKind.PRECOMMIT))
    outsider = make_keys(1, salt=5)[0]
    with pytest.raises(ValueError, match="member"):
        s.add(Vote(VoteKind.PREVOTE, CHAIN, 1, 0, A, outsider.public_key).signed(outsider))


def test_contains_recognises_only_the_exact_signed_vote() -> None:
    s = fresh()
    v = vote(0, A)
    s.add(v)
    assert s.contains(v)
    assert not s.contains(Vote(v.kind, v.chain_id, v.height, v.round, v.block_hash, v.validator, b"\x00" * 64))


def test_height_votes_reports_voters_per_round_without_creating_sets() -> None:
    h = HeightVotes(CHAIN, 1, VALIDATORS)
    h.prevotes(2).add(vote(0, A, round_=2))
    h.precommits(2).add(vote(1, A, round_=2, kind=VoteKind.PRECOMMIT))
    assert h.voters_in_round(2) == {KEYS[0].public_key, KEYS[1].public_key}
    assert h.voters_in_round(9) == frozenset() and 9 not in h.rounds()
    assert h.precommit_rounds() == [2]
    assert len(h.all_votes()) == 2


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.sampled_from([A, B, None])), max_size=40))
def test_tallies_match_a_reference_count(script: list[tuple[int, bytes | None]]) -> None:
    s = fresh()
    kept: dict[int, list[bytes | None]] = {}
    for i, value in script:
        s.add(vote(i, value))
        held = kept.setdefault(i, [])
        if value not in held and len(held) < 2:
            held.append(value)
    for value in (A, B, None):
        assert s.count(value) == sum(value in held for held in kept.values())
        assert s.has_quorum(value) == (s.count(value) >= 5)
    assert s.total == len(kept)
