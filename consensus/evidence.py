"""Evidence of equivocation: one validator signing two different votes for the same height, round and kind.

Tendermint's safety argument (Buchman, Kwon, Milosevic 2018, §4) holds while at most f validators are faulty;
a validator that signs two prevotes or two precommits in one round is provably faulty, and this object is the
proof. It carries both signed votes, so anyone holding the validator set of that height can check it without
trusting the node that reported it, and it encodes canonically so it can be put on chain as a transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from consensus.messages import MessageError, as_map
from consensus.votes import ValidatorSet, Vote, VoteKind
from primitives import codec


def _order_key(vote: Vote) -> bytes:
    # Nil (None) sorts before every 32-byte hash, so the pair has one canonical order and one hash.
    return vote.block_hash if vote.block_hash is not None else b""


@dataclass(frozen=True)
class DuplicateVoteEvidence:
    """Two conflicting signed votes by one validator, held in canonical order (nil first, then by hash)."""

    vote_a: Vote
    vote_b: Vote

    def __post_init__(self) -> None:
        a, b = self.vote_a, self.vote_b
        same_slot = (a.kind, a.chain_id, a.height, a.round, a.validator) == (
            b.kind,
            b.chain_id,
            b.height,
            b.round,
            b.validator,
        )
        if not same_slot:
            raise MessageError("evidence votes must share kind, chain, height, round and validator")
        if a.block_hash == b.block_hash:
            raise MessageError("evidence votes must be for different values")
        if _order_key(a) > _order_key(b):
            raise MessageError("evidence votes must be in canonical order (use DuplicateVoteEvidence.of)")

    @classmethod
    def of(cls, first: Vote, second: Vote) -> DuplicateVoteEvidence:
        """Evidence from two conflicting votes in either order."""
        a, b = sorted((first, second), key=_order_key)
        return cls(a, b)

    @property
    def validator(self) -> bytes:
        return self.vote_a.validator

    @property
    def height(self) -> int:
        return self.vote_a.height

    @property
    def round(self) -> int:
        return self.vote_a.round

    @property
    def kind(self) -> VoteKind:
        return self.vote_a.kind

    def verify(self, validators: ValidatorSet | None = None) -> bool:
        """Both signatures are valid and, when the set of that height is given, the signer was a member."""
        if validators is not None and self.validator not in validators:
            return False
        return self.vote_a.verify() and self.vote_b.verify()

    def to_value(self) -> codec.Value:
        return {"type": "duplicate_vote", "vote_a": self.vote_a.to_value(), "vote_b": self.vote_b.to_value()}

    @classmethod
    def from_value(cls, value: codec.Value) -> DuplicateVoteEvidence:
        """Parse decoded evidence; malformed or non-conflicting input raises `MessageError`."""
        fields = as_map(value, "evidence")
        if fields.get("type") != "duplicate_vote":
            raise MessageError('evidence type must be "duplicate_vote"')
        try:
            a, b = Vote.from_value(fields.get("vote_a")), Vote.from_value(fields.get("vote_b"))
        except ValueError as exc:
            raise MessageError(f"evidence vote: {exc}") from exc
        return cls(a, b)

    def hash(self) -> bytes:
        """The canonical hash: equal for every node that reports the same equivocation."""
        return codec.digest(self.to_value())
