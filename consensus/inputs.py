"""Everything the consensus machine can be told, as data: one frozen dataclass per kind of input.

The machine (consensus/machine.py) is a function of its start state and the sequence of (input, now) pairs it is
fed. Written as values rather than closures, that sequence can be logged readably, journaled to disk and fed to a
fresh machine again (consensus/input_journal.py, `ehrnet ledger replay`): the deterministic replay a Tendermint node
gets from its write-ahead log. Each input has one canonical DAG-CBOR form (primitives/codec.py), a map tagged by
`"t"`, so a journal written by one build reads back the same in another.
"""

from __future__ import annotations

from dataclasses import dataclass

from consensus.messages import HASH_SIZE, as_map, bytes_field, int_field
from consensus.proposal import Proposal
from consensus.timeouts import Step, Timeout
from consensus.votes import ValidatorSet, Vote
from primitives import codec


@dataclass(frozen=True)
class Start:
    """Line 10 of Algorithm 1: begin round 0 of the machine's height (messages fed before are kept)."""


@dataclass(frozen=True)
class StartHeight:
    """Move to `height` with the validator set the last final block named (after a decision or block sync)."""

    height: int
    validators: ValidatorSet


@dataclass(frozen=True)
class ReceiveProposal:
    """A signed proposal with its value (an encoded block), or `value=None` when only the hash could be had.

    `verified`: the signature was already checked (the shell's own persisted messages, or batch verification)."""

    proposal: Proposal
    value: bytes | None
    verified: bool = False


@dataclass(frozen=True)
class ReceiveVote:
    """A signed prevote or precommit; `verified` as for proposals (votes this node signed before a restart)."""

    vote: Vote
    verified: bool = False


@dataclass(frozen=True)
class ReceiveValue:
    """A value fetched by hash, answering the machine's `RequestValue`."""

    value_hash: bytes
    value: bytes


@dataclass(frozen=True)
class TimeoutExpired:
    """A timeout the machine scheduled (`ScheduleTimeout`) has come due."""

    timeout: Timeout


ConsensusInput = Start | StartHeight | ReceiveProposal | ReceiveVote | ReceiveValue | TimeoutExpired


def describe(item: ConsensusInput) -> str:
    """One short line for logs and replay reports (hashes cut to 8 bytes of hex)."""
    match item:
        case Start():
            return "start"
        case StartHeight(height, validators):
            return f"start-height h={height} validators={len(validators)}"
        case ReceiveProposal(proposal, value, _):
            held = "with value" if value is not None else "without value"
            return (
                f"proposal h={proposal.height} r={proposal.round} pol={proposal.pol_round} "
                f"{proposal.value_hash.hex()[:16]} from {proposal.proposer.hex()[:8]} {held}"
            )
        case ReceiveVote(vote, _):
            target = vote.block_hash.hex()[:16] if vote.block_hash is not None else "nil"
            return f"{vote.kind.name.lower()} h={vote.height} r={vote.round} {target} from {vote.validator.hex()[:8]}"
        case ReceiveValue(value_hash, value):
            return f"value {value_hash.hex()[:16]} ({len(value)} bytes)"
        case TimeoutExpired(timeout):
            return f"timeout {timeout.step.name.lower()} h={timeout.height} r={timeout.round}"


def encode_input(item: ConsensusInput) -> codec.Value:
    """The canonical value of an input: a map whose `"t"` names the kind."""
    match item:
        case Start():
            return {"t": "start"}
        case StartHeight(height, validators):
            return {"t": "start_height", "height": height, "validators": list(validators.members)}
        case ReceiveProposal(proposal, value, verified):
            return {"t": "proposal", "value": value, "proposal": proposal.to_value(), "verified": verified}
        case ReceiveVote(vote, verified):
            return {"t": "vote", "vote": vote.to_value(), "verified": verified}
        case ReceiveValue(value_hash, value):
            return {"t": "value", "hash": value_hash, "value": value}
        case TimeoutExpired(timeout):
            return {
                "t": "timeout",
                "step": int(timeout.step),
                "round": timeout.round,
                "height": timeout.height,
            }


def decode_input(value: codec.Value) -> ConsensusInput:
    """Parse what `encode_input` wrote; anything else raises ValueError naming the field."""
    fields = as_map(value, "a consensus input")
    kind = fields.get("t")
    if kind == "start":
        return Start()
    if kind == "start_height":
        members = fields.get("validators")
        if not isinstance(members, list) or not all(isinstance(m, bytes) for m in members):
            raise ValueError("start_height validators must be a list of public keys")
        keys = tuple(m for m in members if isinstance(m, bytes))
        return StartHeight(int_field(fields, "height", "start_height"), ValidatorSet(keys))
    if kind == "proposal":
        raw = fields.get("value")
        if raw is not None and not isinstance(raw, bytes):
            raise ValueError("proposal input value must be bytes or null")
        return ReceiveProposal(Proposal.from_value(fields.get("proposal")), raw, _flag(fields, "verified"))
    if kind == "vote":
        return ReceiveVote(Vote.from_value(fields.get("vote")), _flag(fields, "verified"))
    if kind == "value":
        raw = fields.get("value")
        if not isinstance(raw, bytes):
            raise ValueError("value input value must be bytes")
        return ReceiveValue(bytes_field(fields, "hash", "value input", HASH_SIZE), raw)
    if kind == "timeout":
        step = int_field(fields, "step", "timeout input")
        if step not in (s.value for s in Step):
            raise ValueError(f"timeout input step must be 1, 2 or 3, not {step}")
        height, round_ = int_field(fields, "height", "timeout input"), int_field(fields, "round", "timeout input")
        return TimeoutExpired(Timeout(height, round_, Step(step)))
    raise ValueError(f"unknown consensus input kind {kind!r}")


def _flag(fields: dict[str, codec.Value], name: str) -> bool:
    flag = fields.get(name)
    if not isinstance(flag, bool):
        raise ValueError(f"input field {name} must be true or false")
    return flag
