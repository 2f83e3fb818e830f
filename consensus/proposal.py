"""A signed block proposal: the first message of every Tendermint round.

The proposer of (height, round) — `ValidatorSet.proposer` — signs the value's hash together with its
`pol_round`, the paper's validRound (Buchman, Kwon, Milosevic 2018, Algorithm 1, line 19): −1 for a fresh
value, or the earlier round in which a quorum prevoted the value it re-proposes. The value itself (an encoded
block, opaque here) travels next to the proposal but is not signed: its hash binds it, and a node that receives
a value whose hash differs keeps the proposal and fetches the value by hash instead.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from consensus.messages import HASH_SIZE, KEY_SIZE, MessageError, as_map, bytes_field, int_field, str_field
from primitives import codec
from primitives.keys import SigningKey, verify

PROPOSAL_DOMAIN = "ehrnet/proposal/v1"


@dataclass(frozen=True)
class Proposal:
    """A proposer's signed claim "at (height, round) I propose the value with `value_hash`"."""

    chain_id: str
    height: int
    round: int
    pol_round: int
    value_hash: bytes
    proposer: bytes
    signature: bytes = b""

    def __post_init__(self) -> None:
        if self.height < 0 or self.round < 0:
            raise MessageError("proposal height and round must be non-negative")
        # Algorithm 1 line 28 only considers 0 ≤ vr < round; anything else cannot come from an honest proposer.
        if not (self.pol_round == -1 or 0 <= self.pol_round < self.round):
            raise MessageError(f"proposal pol_round {self.pol_round} must be -1 or lie in [0, {self.round})")
        if len(self.value_hash) != HASH_SIZE:
            raise MessageError("proposal value_hash must be 32 bytes")
        if len(self.proposer) != KEY_SIZE:
            raise MessageError("proposal proposer must be a 32-byte public key")

    def sign_bytes(self) -> bytes:
        """Everything but the signature, canonically encoded and domain-separated from votes and transactions."""
        return codec.encode(
            {
                "type": PROPOSAL_DOMAIN,
                "chain_id": self.chain_id,
                "height": self.height,
                "round": self.round,
                "pol_round": self.pol_round,
                "value_hash": self.value_hash,
                "proposer": self.proposer,
            }
        )

    def signed(self, key: SigningKey) -> Proposal:
        if key.public_key != self.proposer:
            raise ValueError("signing key does not match the proposal's proposer")
        return replace(self, signature=key.sign(self.sign_bytes()))

    def verify(self) -> bool:
        return verify(self.proposer, self.sign_bytes(), self.signature)

    def to_value(self) -> codec.Value:
        return {
            "chain_id": self.chain_id,
            "height": self.height,
            "round": self.round,
            "pol_round": self.pol_round,
            "value_hash": self.value_hash,
            "proposer": self.proposer,
            "signature": self.signature,
        }

    @classmethod
    def from_value(cls, value: codec.Value) -> Proposal:
        """Parse a decoded proposal; malformed input raises `MessageError` (a peer's bad message, never a crash)."""
        fields = as_map(value, "a proposal")
        return cls(
            chain_id=str_field(fields, "chain_id", "proposal"),
            height=int_field(fields, "height", "proposal"),
            round=int_field(fields, "round", "proposal"),
            pol_round=int_field(fields, "pol_round", "proposal", minimum=-1),
            value_hash=bytes_field(fields, "value_hash", "proposal", HASH_SIZE),
            proposer=bytes_field(fields, "proposer", "proposal", KEY_SIZE),
            signature=bytes_field(fields, "signature", "proposal"),
        )
