"""The consensus journal and its replay (consensus/input_journal.py, consensus/replay.py) on machines in one process.

Four machines exchange messages through a small deterministic bus that loses one proposal for two of them
(so timeouts and a round change are in the story); machine 0 journals every input. Replay re-runs a fresh machine
from the journal and must reach the same decisions, compare equal step by step, and name the first step where a
changed journal makes it differ. The real 4-node cluster run is tests/node/test_ledger_journal_cluster.py.
"""

from __future__ import annotations

import hashlib
import heapq
from pathlib import Path

import pytest

from consensus import actions
from consensus.input_journal import ConsensusJournal, JournaledApp, JournalError, read_records
from consensus.inputs import (
    ConsensusInput,
    ReceiveProposal,
    ReceiveValue,
    ReceiveVote,
    Start,
    StartHeight,
    TimeoutExpired,
)
from consensus.machine import ConsensusMachine
from consensus.replay import read_segments, replay
from tests.consensus.test_machine_harness import CHAIN, FAST, FakeApp, make_keys, validator_set

KEYS = make_keys(4)
VALIDATORS = validator_set(KEYS)


def sha(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


def run_bus(journal: ConsensusJournal, heights: int) -> list[actions.Commit]:
    """Run until machine 0 has decided `heights` heights; returns its decisions."""
    machines = [
        ConsensusMachine(
            chain_id=CHAIN,
            app=JournaledApp(FakeApp("0"), journal) if i == 0 else FakeApp(str(i)),
            height=1,
            validators=VALIDATORS,
            key=KEYS[i],
            params=FAST,
        )
        for i in range(4)
    ]
    journal.begin(machines[0], max_block_bytes=1 << 20, max_tx_bytes=1 << 16)
    queue: list[tuple[int, int, int, ConsensusInput]] = []  # (at_ns, sequence, node, input)
    sequence = 0
    decided: list[actions.Commit] = []

    def push(at_ns: int, node: int, item: ConsensusInput) -> None:
        nonlocal sequence
        sequence += 1
        heapq.heappush(queue, (at_ns, sequence, node, item))

    def others(source: int) -> list[int]:
        return [n for n in range(4) if n != source]

    for node in range(4):
        push(0, node, Start())
    while queue and len(decided) < heights:
        now_ns, _, node, item = heapq.heappop(queue)
        if node == 0:
            journal.step_in(item, now_ns)
        try:
            todo = machines[node].feed(item, now_ns / 1e9)
        except ValueError as exc:
            if node == 0:
                journal.step_out(None, error=str(exc))
            continue
        if node == 0:
            journal.step_out(todo)
        later = now_ns + 10_000_000  # every message takes 10 ms
        for action in todo:
            if isinstance(action, actions.BroadcastProposal):
                lost = action.proposal.height == 2 and action.proposal.round == 0
                for target in others(node):
                    if not (lost and target in (0, 3)):  # two never see height 2's first proposal: no quorum
                        push(later, target, ReceiveProposal(action.proposal, action.value))
            elif isinstance(action, actions.BroadcastVote):
                for target in others(node):
                    push(later, target, ReceiveVote(action.vote))
            elif isinstance(action, actions.ScheduleTimeout):
                push(round(action.at * 1e9), node, TimeoutExpired(action.timeout))
            elif isinstance(action, actions.RequestValue):
                held = next((m.value(action.value_hash) for m in machines if m.value(action.value_hash)), None)
                if held is not None:
                    push(later, node, ReceiveValue(action.value_hash, held))
            elif isinstance(action, actions.Commit):
                if node == 0:
                    decided.append(action)
                push(later, node, StartHeight(action.height + 1, VALIDATORS))
    journal.close()
    return decided


@pytest.fixture
def journaled(tmp_path: Path) -> tuple[Path, list[actions.Commit]]:
    path = tmp_path / "consensus.journal"
    return path, run_bus(ConsensusJournal(path), heights=4)


def test_replay_reaches_the_same_decisions_and_matches_every_step(journaled: tuple[Path, list[actions.Commit]]) -> None:
    path, decided = journaled
    result = replay(read_segments(path), KEYS[0], value_hash=sha)
    assert result.mismatch is None, str(result.mismatch)
    assert [(d.height, d.round, d.value_hash) for d in result.decisions] == [
        (c.height, c.round, c.value_hash) for c in decided
    ]
    assert any(d.round > 0 for d in result.decisions)  # the lost proposal made height 2 take another round
    assert result.compared == result.steps > 20


def test_a_changed_validity_verdict_is_found_at_the_step_that_asked_for_it(
    journaled: tuple[Path, list[actions.Commit]],
) -> None:
    path, _ = journaled
    segments = read_segments(path)
    records = segments[0].records
    index = next(i for i, r in enumerate(records) if r["t"] == "valid")
    records[index] = {**records[index], "ok": False}
    asked_in = max(r["n"] for r in records[:index] if r["t"] == "in")  # type: ignore[type-var]
    result = replay(segments, KEYS[0], value_hash=sha)
    assert result.mismatch is not None and result.mismatch.step == asked_in
    assert "nil" in " ".join(result.mismatch.replayed)  # it prevoted nil where the node prevoted the block


def test_replay_needs_the_validators_own_key(journaled: tuple[Path, list[actions.Commit]]) -> None:
    path, _ = journaled
    with pytest.raises(JournalError, match="needs its key"):
        replay(read_segments(path), KEYS[1], value_hash=sha)


def test_a_torn_last_record_ends_the_journal_and_every_restart_is_a_segment(
    journaled: tuple[Path, list[actions.Commit]],
) -> None:
    path, decided = journaled
    run_bus(ConsensusJournal(path), heights=1)  # the node started again: a second begin record, a new machine
    with open(path, "ab") as file:
        file.write(b"\x00\x00\x01\x00partial")  # died while writing
    segments = read_segments(path)
    assert len(segments) == 2
    result = replay(segments, KEYS[0], value_hash=sha)
    assert result.mismatch is None
    assert [d.segment for d in result.decisions] == [1] * len(decided) + [2]


def test_garbage_in_the_middle_is_an_error_naming_its_offset(tmp_path: Path) -> None:
    path = tmp_path / "bad.journal"
    path.write_bytes(b"\x00\x00\x00\x02\xff\xff")
    with pytest.raises(JournalError, match="byte 0"):
        list(read_records(path))


def test_a_failing_write_ends_the_journal_and_not_the_caller(tmp_path: Path) -> None:
    journal = ConsensusJournal(tmp_path / "full.journal")

    class FullDisk:
        def write(self, data: bytes) -> int:
            raise OSError(28, "No space left on device")

        def close(self) -> None:
            pass

    journal._file = FullDisk()  # type: ignore[assignment]
    journal.step_in(Start(), 0)  # no exception: the node goes on without its journal
    journal.step_out([])
    assert journal._file is None
