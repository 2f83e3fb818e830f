"""The consensus input journal: every input a node feeds its machine, with the clock value it used, on disk.

Opt-in (`ehrnet node run --journal`, or `EHRNET_CONSENSUS_JOURNAL=1` in the node's environment): it costs a write
per input and holds every proposed block in full. With it, `ehrnet ledger replay` (consensus/replay.py) re-runs
the node's machine from the same start state on the same inputs and reproduces its decisions, which is what a
fault-injection failure needs to be understood after the cluster is gone (docs/CONSENSUS.md §8).

Format: a sequence of records, each a 4-byte big-endian length and a canonical DAG-CBOR map (primitives/codec.py)
whose `"t"` names the kind. Every start of the node appends a `begin` record (the machine's start state) and then,
per input, `in` (the input and the clock in integer nanoseconds), the application's answers the machine asked for
while handling it (`propose`: the block it proposed; `valid`: a validity verdict, which depends on the chain state
and the wall clock), and `out` (the actions, summarised, or the error). Records are flushed to the OS after `in`
and after `out`, so a node that crashes loses at most the step it was in; they are not fsynced (a journal is a
debugging record, and an fsync per input would cost a validator more than the consensus step itself).
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from consensus import actions
from consensus.height_state import Application
from consensus.inputs import ConsensusInput, encode_input
from consensus.machine import ConsensusMachine
from consensus.timeouts import TimeoutParams
from primitives import codec

log = logging.getLogger(__name__)

ENABLE_ENV = "EHRNET_CONSENSUS_JOURNAL"
FILE_NAME = "consensus.journal"
VERSION = 1
MAX_RECORD_BYTES = 64 * 1024 * 1024  # above any block the genesis limits allow, with room for the record around it
_LENGTH = struct.Struct(">I")


class JournalError(ValueError):
    """A journal that cannot be read: the message names the record and what is wrong with it."""


def enabled_by_environment() -> bool:
    return os.environ.get(ENABLE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def params_to_value(params: TimeoutParams) -> codec.Value:
    # DAG-CBOR has no floats: each duration goes as its repr, which reads back as exactly the same float.
    return {name: repr(getattr(params, name)) for name in sorted(TimeoutParams.__dataclass_fields__)}


def params_from_value(value: codec.Value) -> TimeoutParams:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise JournalError("begin record params must be a map of durations")
    try:
        return TimeoutParams(**{name: float(str(text)) for name, text in value.items()})
    except (TypeError, ValueError) as exc:
        raise JournalError(f"begin record params: {exc}") from exc


def describe_action(action: actions.Action) -> str:
    """One line per action: what a replay compares with the journal (and prints when they differ)."""
    match action:
        case actions.BroadcastProposal(proposal, _, proof):
            return (
                f"propose h={proposal.height} r={proposal.round} pol={proposal.pol_round} "
                f"{proposal.value_hash.hex()[:16]} proof={len(proof)}"
            )
        case actions.BroadcastVote(vote):
            target = vote.block_hash.hex()[:16] if vote.block_hash is not None else "nil"
            return f"{vote.kind.name.lower()} h={vote.height} r={vote.round} {target}"
        case actions.ScheduleTimeout(timeout, at):
            return f"schedule {timeout.step.name.lower()} h={timeout.height} r={timeout.round} at={at!r}"
        case actions.Commit(height, round_, value_hash, _, precommits):
            return f"commit h={height} r={round_} {value_hash.hex()} precommits={len(precommits)}"
        case actions.RecordEvidence(evidence):
            return f"evidence {evidence.validator.hex()[:16]} h={evidence.vote_a.height} r={evidence.vote_a.round}"
        case actions.RequestValue(height, value_hash):
            return f"request h={height} {value_hash.hex()[:16]}"


class ConsensusJournal:
    """Appends records for one run of a node; `begin` first, then `step_in` / `step_out` around every input."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO | None = open(path, "ab")  # noqa: SIM115 - held open for the node's run
        self._step = 0

    def begin(self, machine: ConsensusMachine, *, max_block_bytes: int, max_tx_bytes: int) -> None:
        """The machine's start state, and the block limits replay needs to name blocks by hash as the node did.
        A restarted validator's lock is not part of it (a fresh machine starts unlocked): the shell restores the
        lock with inputs of its own persisted votes, which are journaled and replayed like any other."""
        key = machine.key
        self._write(
            {
                "t": "begin",
                "version": VERSION,
                "chain_id": machine.chain_id,
                "public_key": key.public_key if key is not None else None,
                "height": machine.height,
                "validators": list(machine.validators.members),
                "params": params_to_value(machine.params),
                "max_round_ahead": machine.max_round_ahead,
                "max_buffered": machine.max_buffered,
                "max_block_bytes": max_block_bytes,
                "max_tx_bytes": max_tx_bytes,
                "locked_round": machine.locked_round,
                "locked_value": machine.locked_value,
            },
            flush=True,
        )

    def step_in(self, item: ConsensusInput, now_ns: int) -> None:
        self._step += 1
        self._write({"t": "in", "n": self._step, "now_ns": now_ns, "input": encode_input(item)}, flush=True)

    def step_out(self, todo: list[actions.Action] | None, error: str | None = None) -> None:
        summary: list[codec.Value] = [describe_action(a) for a in todo or []]
        self._write({"t": "out", "n": self._step, "actions": summary, "error": error}, flush=True)

    def proposed(self, height: int, round_: int, value: bytes) -> None:
        self._write({"t": "propose", "height": height, "round": round_, "value": value}, flush=False)

    def validated(self, height: int, value_hash: bytes, valid: bool) -> None:
        self._write({"t": "valid", "height": height, "hash": value_hash, "ok": valid}, flush=False)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _write(self, record: dict[str, codec.Value], *, flush: bool) -> None:
        file = self._file
        if file is None:
            return
        try:
            data = codec.encode(record)
            file.write(_LENGTH.pack(len(data)) + data)
            if flush:
                file.flush()
        except (OSError, ValueError) as exc:  # a full disk (or a value it cannot encode) ends the journal, not the node
            log.warning("consensus journal %s stopped: %s", self.path, exc)
            self.close()


def open_consensus_journal(data_dir: Path, app: Application) -> tuple[ConsensusJournal | None, Application]:
    """The journal (None unless enabled) and the application the machine should be given: the same one, with
    its answers journaled when the journal is on."""
    if not enabled_by_environment():
        return None, app
    journal = ConsensusJournal(data_dir / FILE_NAME)
    log.info("journaling consensus inputs to %s", journal.path)
    return journal, JournaledApp(app, journal)


class JournaledApp:
    """The application as the machine sees it, with every answer that depends on more than the input (the block
    this node proposes, a validity verdict) written to the journal: replay answers from there."""

    def __init__(self, inner: Application, journal: ConsensusJournal) -> None:
        self.inner, self.journal = inner, journal

    def value_hash(self, value: bytes) -> bytes:
        return self.inner.value_hash(value)  # a pure function of the value: replay recomputes it

    def propose(self, height: int, round_: int, now: float) -> bytes:
        value = self.inner.propose(height, round_, now)
        self.journal.proposed(height, round_, value)
        return value

    def validate(self, height: int, value: bytes) -> bool:
        valid = self.inner.validate(height, value)
        self.journal.validated(height, self.inner.value_hash(value), valid)
        return valid


def read_records(path: Path) -> Iterator[tuple[int, dict[str, codec.Value]]]:
    """(offset, record) for every complete record. A torn last record (the node died while writing it) ends the
    journal quietly; anything else malformed raises JournalError naming its offset."""
    with open(path, "rb") as file:
        offset = 0
        while True:
            head = file.read(_LENGTH.size)
            if len(head) < _LENGTH.size:
                return
            (size,) = _LENGTH.unpack(head)
            if size > MAX_RECORD_BYTES:
                raise JournalError(f"{path}: record at byte {offset} claims {size} bytes (at most {MAX_RECORD_BYTES})")
            data = file.read(size)
            if len(data) < size:
                return
            try:
                record = codec.decode(data)
            except codec.CodecError as exc:
                raise JournalError(f"{path}: record at byte {offset}: {exc}") from exc
            if not isinstance(record, dict) or not isinstance(record.get("t"), str):
                raise JournalError(f"{path}: record at byte {offset} is not a tagged map")
            yield offset, record
            offset += _LENGTH.size + size
