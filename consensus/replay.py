"""Deterministic replay of a consensus journal (consensus/input_journal.py): the node's machine, run again.

Each `begin` record starts a fresh `ConsensusMachine` with the journaled start state and the node's own key (the
machine signs its votes again; Ed25519 signatures are deterministic, RFC 8032 §5.1.6, so they come out the same).
Every `in` record is fed through `ConsensusMachine.feed` at its journaled clock value. The application answers
from the journal: a block's hash is recomputed from the block, the block this node proposed and each validity
verdict come from the `propose` and `valid` records (they depend on the mempool, the chain state and the wall
clock at the time, none of which a journal could hold whole). Nothing the machine output is echoed: the actions
are produced again and compared with the journal's `out` summaries, so a replay that differs names the first step
where the machine no longer does what it did.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from consensus import actions
from consensus.block import decode_block
from consensus.errors import LedgerError
from consensus.input_journal import VERSION, JournalError, describe_action, params_from_value, read_records
from consensus.inputs import decode_input, describe
from consensus.machine import ConsensusMachine
from consensus.votes import ValidatorSet
from primitives import codec
from primitives.keys import SigningKey

ValueHash = Callable[[bytes], bytes]


class ReplayError(Exception):
    """The replayed machine asked for something the journal never recorded (it has already diverged)."""


@dataclass(frozen=True)
class Decision:
    segment: int
    step: int
    height: int
    round: int
    value_hash: bytes


@dataclass(frozen=True)
class Mismatch:
    segment: int
    step: int
    input: str
    journaled: list[str]
    replayed: list[str]

    def __str__(self) -> str:
        return (
            f"segment {self.segment} step {self.step} ({self.input}): the journal has {self.journaled}, "
            f"the replay produced {self.replayed}"
        )


@dataclass
class Segment:
    """One run of the node: its `begin` record and what followed it until the next `begin`."""

    begin: dict[str, codec.Value]
    records: list[dict[str, codec.Value]] = field(default_factory=list)


@dataclass
class ReplayResult:
    segments: int = 0
    steps: int = 0
    compared: int = 0
    decisions: list[Decision] = field(default_factory=list)
    mismatch: Mismatch | None = None


class ReplayApp:
    """The application answering from the journal (consensus.height_state.Application)."""

    def __init__(self, segment: Segment, value_hash: ValueHash | None = None) -> None:
        begin = segment.begin
        self.chain_id = _text(begin, "chain_id")
        self.max_block_bytes, self.max_tx_bytes = _int(begin, "max_block_bytes"), _int(begin, "max_tx_bytes")
        self._value_hash = value_hash or self.block_hash
        self.proposals: dict[tuple[int, int], bytes] = {}
        self.verdicts: dict[tuple[int, bytes], bool] = {}
        for record in segment.records:
            if record["t"] == "propose":
                value = record.get("value")
                if not isinstance(value, bytes):
                    raise JournalError("a propose record's value must be bytes")
                self.proposals[(_int(record, "height"), _int(record, "round"))] = value
            elif record["t"] == "valid":
                named, verdict = record.get("hash"), record.get("ok")
                if not isinstance(named, bytes) or not isinstance(verdict, bool):
                    raise JournalError("a valid record needs a hash and a true/false verdict")
                self.verdicts[(_int(record, "height"), named)] = verdict

    def value_hash(self, value: bytes) -> bytes:
        return self._value_hash(value)

    def block_hash(self, value: bytes) -> bytes:
        # The names node/ledger/chain_app.py gives: the block header's hash, or for bytes that are no block a
        # hash no header can have.
        try:
            return decode_block(
                value, chain_id=self.chain_id, max_block_bytes=self.max_block_bytes, max_tx_bytes=self.max_tx_bytes
            ).hash
        except LedgerError:
            return hashlib.sha256(b"ehrnet/undecodable-block\x00" + value).digest()

    def propose(self, height: int, round_: int, now: float) -> bytes:
        value = self.proposals.get((height, round_))
        if value is None:
            raise ReplayError(f"the journal holds no block proposed at height {height} round {round_}")
        return value

    def validate(self, height: int, value: bytes) -> bool:
        value_hash = self.value_hash(value)
        verdict = self.verdicts.get((height, value_hash))
        if verdict is None:
            raise ReplayError(f"the journal holds no validity verdict for {value_hash.hex()[:16]} at height {height}")
        return verdict


def read_segments(path: Path) -> list[Segment]:
    segments: list[Segment] = []
    for offset, record in read_records(path):
        if record["t"] == "begin":
            if record.get("version") != VERSION:
                raise JournalError(f"{path}: journal version {record.get('version')!r} at byte {offset}, not {VERSION}")
            segments.append(Segment(record))
        elif not segments:
            raise JournalError(f"{path}: record at byte {offset} comes before any begin record")
        else:
            segments[-1].records.append(record)
    return segments


def public_keys(segments: Iterable[Segment]) -> set[bytes]:
    return {key for s in segments if isinstance(key := s.begin.get("public_key"), bytes)}


def replay(segments: list[Segment], key: SigningKey | None, value_hash: ValueHash | None = None) -> ReplayResult:
    """Re-run every segment; stops at the first step whose actions differ from the journal's. `value_hash`
    names values as the node's application did (default: an encoded block's header hash)."""
    result = ReplayResult()
    for number, segment in enumerate(segments, start=1):
        result.segments += 1
        _replay_segment(number, segment, _machine(segment, key, value_hash), result)
        if result.mismatch is not None:
            break
    return result


def _machine(segment: Segment, key: SigningKey | None, value_hash: ValueHash | None) -> ConsensusMachine:
    begin = segment.begin
    expected = begin.get("public_key")
    if isinstance(expected, bytes) and (key is None or key.public_key != expected):
        raise JournalError(f"the journal was written by validator {expected.hex()[:16]}: replay needs its key")
    members = begin.get("validators")
    if not isinstance(members, list) or not all(isinstance(m, bytes) for m in members):
        raise JournalError("begin record validators must be a list of public keys")
    return ConsensusMachine(
        chain_id=_text(begin, "chain_id"),
        app=ReplayApp(segment, value_hash),
        height=_int(begin, "height"),
        validators=ValidatorSet(tuple(m for m in members if isinstance(m, bytes))),
        key=key if isinstance(expected, bytes) else None,
        params=params_from_value(begin.get("params")),
        max_round_ahead=_int(begin, "max_round_ahead"),
        max_buffered=_int(begin, "max_buffered"),
    )


def _replay_segment(number: int, segment: Segment, machine: ConsensusMachine, result: ReplayResult) -> None:
    records = segment.records
    for index, record in enumerate(records):
        if record["t"] != "in":
            continue
        step = _int(record, "n")
        try:
            item = decode_input(record.get("input"))
        except ValueError as exc:
            raise JournalError(f"segment {number} step {step}: {exc}") from exc
        now = _int(record, "now_ns") / 1e9  # the same expression the node used (node/ledger/service.py)
        result.steps += 1
        replayed: list[str]
        try:
            todo = machine.feed(item, now)
            replayed = [describe_action(a) for a in todo]
        except ReplayError as exc:
            result.mismatch = Mismatch(number, step, describe(item), ["(answered by the application)"], [str(exc)])
            return
        except (LedgerError, ValueError) as exc:
            todo, replayed = [], [f"error: {exc}"]
        for action in todo:
            if isinstance(action, actions.Commit):
                result.decisions.append(Decision(number, step, action.height, action.round, action.value_hash))
        journaled = _outputs_of(records, index, step)
        if journaled is None:
            continue  # the node stopped inside this step (or the journal ends here)
        result.compared += 1
        if journaled != replayed:
            result.mismatch = Mismatch(number, step, describe(item), journaled, replayed)
            return


def _outputs_of(records: list[dict[str, codec.Value]], index: int, step: int) -> list[str] | None:
    """The journaled outputs of the `in` record at `index`: its `out` record follows its application answers."""
    for record in records[index + 1 :]:
        if record["t"] == "in":
            return None
        if record["t"] == "out" and record.get("n") == step:
            error = record.get("error")
            if isinstance(error, str):
                return [f"error: {error}"]
            summary = record.get("actions")
            if not isinstance(summary, list):
                raise JournalError(f"step {step}: out record actions must be a list")
            return [str(line) for line in summary]
    return None


def _int(record: dict[str, codec.Value], name: str) -> int:
    value = record.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise JournalError(f"{record.get('t')!r} record field {name} must be an integer")
    return value


def _text(record: dict[str, codec.Value], name: str) -> str:
    value = record.get(name)
    if not isinstance(value, str):
        raise JournalError(f"{record.get('t')!r} record field {name} must be text")
    return value
