"""The gossip payload that carries consensus messages: a batch of proposals (with their values) and votes.

GossipSub caps each publisher's message rate (docs/PROTOCOL.md §2), so the shell sends what the machine asks it to
broadcast in batches rather than one message per vote. The payload is canonical DAG-CBOR:

    {"proposals": [{"proposal": <Proposal.to_value()>, "value": bytes | null, "full"?: true}, ...],
     "votes": [<Vote.to_value()>, ...]}

`full` (present only when true) says `value` is the whole value rather than the shell's compact form of it: a
re-proposal travels whole, because the node that needs it most — one restarted without the block's
transactions — could not rebuild it (docs/CONSENSUS.md, "Re-proposals after a crash").

Decoding checks sizes and every field; signatures are left to the state machine (or a batch verifier before it).
"""

from __future__ import annotations

from dataclasses import dataclass

from consensus.messages import MessageError, as_map
from consensus.proposal import Proposal
from consensus.votes import Vote
from primitives import codec

MAX_BATCH_BYTES = 4 * 1024 * 1024
MAX_BATCH_ITEMS = 4096


@dataclass(frozen=True)
class ProposalMessage:
    """A proposal and, unless only its hash is being announced, the value it proposes (in the shell's compact
    form, or whole when `full`)."""

    proposal: Proposal
    value: bytes | None
    full: bool = False


@dataclass(frozen=True)
class ConsensusBatch:
    proposals: tuple[ProposalMessage, ...] = ()
    votes: tuple[Vote, ...] = ()

    def __len__(self) -> int:
        return len(self.proposals) + len(self.votes)

    def encode(self) -> bytes:
        return codec.encode(
            {
                "proposals": [_proposal_entry(p) for p in self.proposals],
                "votes": [v.to_value() for v in self.votes],
            }
        )

    @classmethod
    def decode(
        cls, data: bytes, *, max_bytes: int = MAX_BATCH_BYTES, max_items: int = MAX_BATCH_ITEMS
    ) -> ConsensusBatch:
        """Parse a peer's batch; anything oversized, non-canonical or malformed raises `MessageError`."""
        if len(data) > max_bytes:
            raise MessageError(f"consensus batch of {len(data)} bytes exceeds {max_bytes}")
        try:
            fields = as_map(codec.decode(data), "a consensus batch")
        except codec.CodecError as exc:
            raise MessageError(f"consensus batch: {exc}") from exc
        raw_proposals, raw_votes = fields.get("proposals"), fields.get("votes")
        if (
            set(fields) != {"proposals", "votes"}
            or not isinstance(raw_proposals, list)
            or not isinstance(raw_votes, list)
        ):
            raise MessageError("a consensus batch is a map of exactly a proposals list and a votes list")
        if len(raw_proposals) + len(raw_votes) > max_items:
            raise MessageError(f"consensus batch holds more than {max_items} messages")
        proposals = []
        for item in raw_proposals:
            entry = as_map(item, "a batch proposal")
            value = entry.get("value")
            if value is not None and not isinstance(value, bytes):
                raise MessageError("a batch proposal value must be bytes or null")
            full = entry.get("full", False)
            if not isinstance(full, bool) or (full and value is None):
                raise MessageError("a batch proposal's full flag must be a boolean, and true only with a value")
            proposals.append(ProposalMessage(Proposal.from_value(entry.get("proposal")), value, full))
        try:
            votes = tuple(Vote.from_value(v) for v in raw_votes)
        except ValueError as exc:
            raise MessageError(f"consensus batch vote: {exc}") from exc
        return cls(tuple(proposals), votes)


def _proposal_entry(message: ProposalMessage) -> dict[str, codec.Value]:
    entry: dict[str, codec.Value] = {"proposal": message.proposal.to_value(), "value": message.value}
    if message.full:
        entry["full"] = True
    return entry
