"""Signed consensus votes, validator sets and quorum arithmetic.

Shared by the consensus state machine (which counts votes) and blocks (whose commit is a quorum of signed
precommits). Model: Tendermint (Buchman, Kwon, Milosevic 2018, "The latest gossip on BFT consensus"), with
equal voting power per validator as in a proof-of-authority network: a quorum is ⌊2n/3⌋ + 1 of n validators
and f = ⌊(n − 1)/3⌋ Byzantine validators are tolerated.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from primitives import codec
from primitives.keys import SigningKey, verify


class VoteKind(enum.IntEnum):
    PREVOTE = 1
    PRECOMMIT = 2


def quorum(n: int) -> int:
    """Votes needed to decide among n equal validators: ⌊2n/3⌋ + 1 (3 of 4, 5 of 6, 5 of 7)."""
    if n < 1:
        raise ValueError("a validator set has at least one member")
    return 2 * n // 3 + 1


def max_faulty(n: int) -> int:
    """Byzantine validators tolerated among n: ⌊(n − 1)/3⌋."""
    return (n - 1) // 3


@dataclass(frozen=True)
class ValidatorSet:
    """An ordered set of validator public keys; order fixes proposer rotation."""

    members: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if not self.members:
            raise ValueError("a validator set has at least one member")
        if len(set(self.members)) != len(self.members):
            raise ValueError("duplicate validator key")
        if any(len(m) != 32 for m in self.members):
            raise ValueError("validator keys are 32-byte Ed25519 public keys")

    def __len__(self) -> int:
        return len(self.members)

    def __contains__(self, key: object) -> bool:
        return key in self.members

    @property
    def quorum(self) -> int:
        return quorum(len(self.members))

    def hash(self) -> bytes:
        return codec.digest(list(self.members))

    def proposer(self, height: int, round_: int) -> bytes:
        """Round-robin proposer: each height starts one further along, each round moves one more."""
        return self.members[(height + round_) % len(self.members)]


@dataclass(frozen=True)
class Vote:
    """A validator's prevote or precommit for a block hash (None votes for nil) at one height and round."""

    kind: VoteKind
    chain_id: str
    height: int
    round: int
    block_hash: bytes | None
    validator: bytes
    signature: bytes = b""

    def sign_bytes(self) -> bytes:
        """What the validator signs: everything but the signature, canonically encoded and domain-separated."""
        return codec.encode(
            {
                "type": "ehrnet/vote/v1",
                "kind": int(self.kind),
                "chain_id": self.chain_id,
                "height": self.height,
                "round": self.round,
                "block_hash": self.block_hash,
                "validator": self.validator,
            }
        )

    def signed(self, key: SigningKey) -> Vote:
        if key.public_key != self.validator:
            raise ValueError("signing key does not match the vote's validator")
        signature = key.sign(self.sign_bytes())
        return Vote(self.kind, self.chain_id, self.height, self.round, self.block_hash, self.validator, signature)

    def verify(self) -> bool:
        return verify(self.validator, self.sign_bytes(), self.signature)

    def to_value(self) -> codec.Value:
        return {
            "kind": int(self.kind),
            "chain_id": self.chain_id,
            "height": self.height,
            "round": self.round,
            "block_hash": self.block_hash,
            "validator": self.validator,
            "signature": self.signature,
        }

    @classmethod
    def from_value(cls, value: codec.Value) -> Vote:
        """Parse a decoded vote; malformed input raises ValueError (a peer's bad message, never a crash)."""
        if not isinstance(value, dict):
            raise ValueError("a vote is a map")
        kind, chain_id, height = value.get("kind"), value.get("chain_id"), value.get("height")
        round_, block_hash = value.get("round"), value.get("block_hash")
        validator, signature = value.get("validator"), value.get("signature")
        if not isinstance(kind, int) or kind not in (1, 2):
            raise ValueError("vote kind must be 1 (prevote) or 2 (precommit)")
        if not isinstance(chain_id, str):
            raise ValueError("vote chain_id must be a string")
        if not isinstance(height, int) or isinstance(height, bool) or height < 0:
            raise ValueError("vote height must be a non-negative integer")
        if not isinstance(round_, int) or isinstance(round_, bool) or round_ < 0:
            raise ValueError("vote round must be a non-negative integer")
        if block_hash is not None and not (isinstance(block_hash, bytes) and len(block_hash) == 32):
            raise ValueError("vote block_hash must be 32 bytes or null")
        if not isinstance(validator, bytes) or len(validator) != 32:
            raise ValueError("vote validator must be a 32-byte public key")
        if not isinstance(signature, bytes):
            raise ValueError("vote signature must be bytes")
        return cls(VoteKind(kind), chain_id, height, round_, block_hash, validator, signature)
