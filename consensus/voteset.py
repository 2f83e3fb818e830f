"""Counting signed votes per (height, round, kind), one count per distinct validator, and spotting equivocation.

Counting rule: a value's tally is the number of distinct validators that signed a vote for it. A validator that
equivocates is counted for every value it signed that we keep. That is still safe — two quorums for different
values in one round would need f + 1 validators to sign both, i.e. more than f faulty — and it helps liveness,
since honest nodes agree on the tallies whatever order the conflicting votes reached them in.

What we keep of an equivocator: its first two votes always (enough for evidence), and a further one only when
its value is already backed by f + 1 validators (`add(..., admit_backed=True)`), i.e. by at least one honest one.
The cap bounds what a Byzantine validator can make us store; the exception is needed for liveness. A quorum
that some honest node counted (and maybe decided on) may include an equivocator's third vote; a node that had
capped it away could never count that quorum, and once the deciders stop voting the rest may never form
another one. A real quorum holds at least q − f ≥ f + 1 honest votes, which gossip brings to everyone, so the
vote gets in on a later re-gossip. Values backed by f + 1 can only be built from the first two votes of each
validator, so at most 2n / (f + 1) of them exist per slot: the memory stays bounded even beyond f faults.

Signatures are not checked here: the caller (the state machine) checks them, and a vote's exact duplicate is
recognised first so a re-gossiped vote costs no signature check.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from consensus.evidence import DuplicateVoteEvidence
from consensus.votes import ValidatorSet, Vote, VoteKind, max_faulty


class AddOutcome(enum.Enum):
    ADDED = "added"  # first vote of this validator in the set
    DUPLICATE = "duplicate"  # the same vote again: nothing changes
    CONFLICT = "conflict"  # a second, different vote: counted, and evidence returned
    BACKED = "backed"  # a third or later different vote, counted because f + 1 validators back its value
    IGNORED = "ignored"  # a third or later different vote of an unbacked value: the validator is already proven faulty


@dataclass(frozen=True)
class AddResult:
    outcome: AddOutcome
    evidence: DuplicateVoteEvidence | None = None


class VoteSet:
    """The votes of one kind at one height and round from members of one validator set."""

    def __init__(self, chain_id: str, height: int, round_: int, kind: VoteKind, validators: ValidatorSet) -> None:
        self.chain_id, self.height, self.round, self.kind = chain_id, height, round_, kind
        self.validators = validators
        self._by_validator: dict[bytes, list[Vote]] = {}
        self._by_value: dict[bytes | None, dict[bytes, Vote]] = {}

    def _check_slot(self, vote: Vote) -> None:
        if (vote.kind, vote.chain_id, vote.height, vote.round) != (self.kind, self.chain_id, self.height, self.round):
            raise ValueError("vote does not belong to this vote set")
        if vote.validator not in self.validators:
            raise ValueError("vote is not from a member of the validator set")

    def contains(self, vote: Vote) -> bool:
        """True when this exact signed vote is already held (so its signature need not be checked again)."""
        return vote in self._by_validator.get(vote.validator, ())

    def add(self, vote: Vote, *, admit_backed: bool = False) -> AddResult:
        """Add a vote whose signature the caller has checked. An equivocator's third or later value is ignored,
        unless `admit_backed` and f + 1 validators already voted for that value (see the module docstring)."""
        self._check_slot(vote)
        held = self._by_validator.setdefault(vote.validator, [])
        if any(h.block_hash == vote.block_hash for h in held):
            return AddResult(AddOutcome.DUPLICATE)
        if len(held) >= 2 and not (admit_backed and self.count(vote.block_hash) > max_faulty(len(self.validators))):
            return AddResult(AddOutcome.IGNORED)
        held.append(vote)
        self._by_value.setdefault(vote.block_hash, {})[vote.validator] = vote
        if len(held) == 2:
            return AddResult(AddOutcome.CONFLICT, DuplicateVoteEvidence.of(held[0], held[1]))
        # Already reported with the evidence of its first two votes: no second report.
        return AddResult(AddOutcome.ADDED if len(held) == 1 else AddOutcome.BACKED)

    def count(self, value_hash: bytes | None) -> int:
        """Distinct validators that voted for `value_hash` (None counts nil votes)."""
        return len(self._by_value.get(value_hash, ()))

    @property
    def total(self) -> int:
        """Distinct validators that voted at all (the paper's "2f + 1 ⟨PREVOTE, h, r, ∗⟩")."""
        return len(self._by_validator)

    def has_quorum(self, value_hash: bytes | None) -> bool:
        return self.count(value_hash) >= self.validators.quorum

    def has_quorum_any(self) -> bool:
        return self.total >= self.validators.quorum

    def quorum_values(self) -> list[bytes | None]:
        """The values (None for nil) that a quorum voted for: at most one unless more than f are faulty."""
        q = self.validators.quorum
        return [value for value, voters in self._by_value.items() if len(voters) >= q]

    def votes_for(self, value_hash: bytes | None) -> tuple[Vote, ...]:
        """The votes for one value, ordered by validator position (a block's commit signatures)."""
        voters = self._by_value.get(value_hash, {})
        return tuple(voters[m] for m in self.validators.members if m in voters)

    @property
    def voters(self) -> frozenset[bytes]:
        return frozenset(self._by_validator)

    def votes(self) -> list[Vote]:
        return [v for held in self._by_validator.values() for v in held]


class HeightVotes:
    """All vote sets of one height, created lazily per (round, kind)."""

    def __init__(self, chain_id: str, height: int, validators: ValidatorSet) -> None:
        self.chain_id, self.height, self.validators = chain_id, height, validators
        self._sets: dict[tuple[int, VoteKind], VoteSet] = {}

    def get(self, round_: int, kind: VoteKind) -> VoteSet:
        key = (round_, kind)
        found = self._sets.get(key)
        if found is None:
            found = self._sets[key] = VoteSet(self.chain_id, self.height, round_, kind, self.validators)
        return found

    def prevotes(self, round_: int) -> VoteSet:
        return self.get(round_, VoteKind.PREVOTE)

    def precommits(self, round_: int) -> VoteSet:
        return self.get(round_, VoteKind.PRECOMMIT)

    def rounds(self) -> list[int]:
        return sorted({r for r, _ in self._sets})

    def voters_in_round(self, round_: int) -> frozenset[bytes]:
        """Validators with any vote in `round_` (for the round-skip rule, Algorithm 1 line 55)."""
        # Read without creating: a round that nobody voted in must not leave empty sets behind.
        empty: frozenset[bytes] = frozenset()
        found = [self._sets.get((round_, kind)) for kind in VoteKind]
        return empty.union(*(s.voters for s in found if s is not None))

    def precommit_rounds(self) -> list[int]:
        """Rounds with at least one precommit (where a commit could have formed)."""
        return sorted(r for r, kind in self._sets if kind is VoteKind.PRECOMMIT)

    def all_votes(self) -> list[Vote]:
        return [v for key in sorted(self._sets) for v in self._sets[key].votes()]
