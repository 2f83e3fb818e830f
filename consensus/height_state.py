"""What one node holds at one height — proposals, values, votes — and the checks a message passes to get in.

Split from the state machine so that `machine.py` reads as the rules of Algorithm 1 and this module as the
bookkeeping under them. Nothing here decides anything; it only stores what is acceptable and reports what is
missing (`RequestValue`) or provably faulty (`RecordEvidence`) into the machine's action list.
"""

from __future__ import annotations

from typing import Protocol

from consensus.actions import Action, RecordEvidence, RequestValue
from consensus.messages import MessageError
from consensus.proposal import Proposal
from consensus.votes import ValidatorSet, Vote, VoteKind
from consensus.voteset import AddOutcome, HeightVotes


class Application(Protocol):
    """What the machine needs from the chain: hashing, proposing and validating opaque values (encoded blocks)."""

    def value_hash(self, value: bytes) -> bytes:
        """The 32-byte hash that names `value` (a block's hash); votes and proposals sign this."""
        ...

    def propose(self, height: int, round_: int, now: float) -> bytes:
        """A new value to propose at (height, round) when this node is the proposer and has no valid value."""
        ...

    def validate(self, height: int, value: bytes) -> bool:
        """The paper's valid(v): deterministic, so every honest node agrees. Results are cached per hash."""
        ...


class HeightState:
    """Proposals, values and votes of one height, from the members of that height's validator set."""

    def __init__(self, chain_id: str, height: int, validators: ValidatorSet, app: Application, out: list[Action]):
        self.chain_id, self.height, self.validators, self.app = chain_id, height, validators, app
        self.out = out  # the machine's pending actions
        self.votes = HeightVotes(chain_id, height, validators)
        self.proposals: dict[int, Proposal] = {}
        self.values: dict[bytes, bytes] = {}
        self._validity: dict[bytes, bool] = {}
        # Value hash → the last round in which we asked the shell for it (see `request`).
        self._requested: dict[bytes, int] = {}
        self._evidence_seen: set[bytes] = set()
        # Bumped whenever a precommit or a value arrives: the decide rule (line 49) only needs a fresh look then.
        self.decide_revision = 0

    def accept_proposal(self, proposal: Proposal, value: bytes | None, verified: bool) -> bool:
        """Store the first signed proposal of its round from that round's proposer; True if anything changed."""
        expected = self.validators.proposer(self.height, proposal.round)
        if proposal.proposer != expected:
            raise MessageError(f"proposal for round {proposal.round} is not from that round's proposer")
        held = self.proposals.get(proposal.round)
        changed = held is None
        if held is None:
            if not verified and not proposal.verify():
                raise MessageError("proposal signature does not verify")
            self.proposals[proposal.round] = proposal
        elif held != proposal:
            return False  # the proposer equivocated; the first proposal stands and votes decide the rest
        if proposal.value_hash in self.values:
            return changed
        if value is not None and self.app.value_hash(value) == proposal.value_hash:
            self.values[proposal.value_hash] = value
            self.decide_revision += 1
            return True
        # A relay may have attached a wrong value to a genuine proposal (or a compact block could not be rebuilt):
        # keep the proposal, fetch the value.
        self.request(proposal.value_hash, proposal.round)
        return changed

    def accept_vote(self, vote: Vote, verified: bool) -> bool:
        """Count a member's signed vote, reporting equivocation once; True if the tallies changed."""
        if vote.validator not in self.validators:
            raise MessageError("vote from a key that is not a validator at this height")
        vote_set = self.votes.get(vote.round, vote.kind)
        if vote_set.contains(vote):
            return False
        if not verified and not vote.verify():
            raise MessageError("vote signature does not verify")
        result = vote_set.add(vote, admit_backed=True)
        if result.evidence is not None:
            key = result.evidence.hash()
            if key not in self._evidence_seen:
                self._evidence_seen.add(key)
                self.out.append(RecordEvidence(result.evidence))
        counted = result.outcome in (AddOutcome.ADDED, AddOutcome.CONFLICT, AddOutcome.BACKED)
        if counted and vote.kind is VoteKind.PRECOMMIT:
            self.decide_revision += 1
        return counted

    def accept_value(self, value_hash: bytes, value: bytes) -> bool:
        """Store a value fetched by hash; only values we asked for are kept, so peers cannot fill our memory."""
        if value_hash in self.values or value_hash not in self._requested:
            return False
        if self.app.value_hash(value) != value_hash:
            raise MessageError("value does not match the requested hash")
        self.values[value_hash] = value
        self.decide_revision += 1
        return True

    def valid(self, value_hash: bytes) -> bool:
        known = self._validity.get(value_hash)
        if known is None:
            known = self._validity[value_hash] = self.app.validate(self.height, self.values[value_hash])
        return known

    def request(self, value_hash: bytes, round_: int) -> None:
        """Ask the shell for a value we lack, again in every later round that still needs it: a fetch that
        failed (no peer reachable yet after a restart, a timeout) must not leave a re-proposed locked value
        unobtainable for the rest of the height — that stalled a chain whose locked validators kept
        re-proposing a block the restarted ones could not get. At most one request per value and round."""
        if value_hash in self.values or self._requested.get(value_hash, -1) >= round_:
            return
        self._requested[value_hash] = round_
        self.out.append(RequestValue(self.height, value_hash))
