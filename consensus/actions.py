"""What the consensus state machine asks its shell to do.

Every input of `ConsensusMachine` returns a list of these, in order. The machine performs no IO and reads no
clock: the shell gossips, schedules, fetches, stores and applies, and feeds the results back as new inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

from consensus.evidence import DuplicateVoteEvidence
from consensus.proposal import Proposal
from consensus.timeouts import Timeout
from consensus.votes import Vote


@dataclass(frozen=True)
class BroadcastProposal:
    """Gossip our signed proposal with its value to every validator (and keep it for repair requests).

    A re-proposal (`proposal.pol_round` ≥ 0) carries its proof of lock: the quorum of prevotes for the value in
    `pol_round`. A validator that missed that round — it was down — needs exactly these, and the value itself, to
    accept the re-proposal (Algorithm 1, line 28), so the shell sends them together and serves them on repair."""

    proposal: Proposal
    value: bytes
    proof_of_lock: tuple[Vote, ...] = ()


@dataclass(frozen=True)
class BroadcastVote:
    """Gossip our signed vote. The shell should persist it first: a restarted node must not sign differently."""

    vote: Vote


@dataclass(frozen=True)
class ScheduleTimeout:
    """Call `on_timeout(timeout, now)` once the clock reaches `at` (seconds, on the clock `now` comes from)."""

    timeout: Timeout
    at: float


@dataclass(frozen=True)
class Commit:
    """`value` is final at `height`: a quorum of `precommits` (the block's commit signatures) in `round` signed it.

    After applying and persisting it the shell calls `start_height(height + 1, next_validators, now)`.
    """

    height: int
    round: int
    value_hash: bytes
    value: bytes
    precommits: tuple[Vote, ...]


@dataclass(frozen=True)
class RecordEvidence:
    """A validator equivocated: submit this for inclusion on chain (reported once per machine and slot)."""

    evidence: DuplicateVoteEvidence


@dataclass(frozen=True)
class RequestValue:
    """We hold a proposal or a quorum for `value_hash` but not the value: fetch it from peers (repair path) and
    deliver it with `on_value`."""

    height: int
    value_hash: bytes


Action = BroadcastProposal | BroadcastVote | ScheduleTimeout | Commit | RecordEvidence | RequestValue
