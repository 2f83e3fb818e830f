"""The invariant checker fails a history for each kind of violation, and passes a clean one."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from node.chaos.history import (
    BlockSummary,
    Bounds,
    Fault,
    HeightSample,
    History,
    PinnedRecord,
    ReadAttempt,
    Submission,
)
from node.chaos.invariants import Verdict, check, fault_episodes

NODES = ("node1", "node2", "node3", "node4")
BOUNDS = Bounds(liveness_s=5.0, max_indeterminate=2, indeterminate_window_s=1.0, min_holders=2)


def _block(height: int, txs: tuple[str, ...] = (), tag: str = "") -> BlockSummary:
    return BlockSummary(height=height, hash=f"h{height}{tag}", state_root=f"s{height}{tag}", txs=txs)


def clean_history() -> History:
    """Four nodes, ten blocks, node2 killed at 3 s and restarted at 6 s; the chain resumes at 7 s and node2 is back
    at the head at 8 s. Six acknowledged transactions, one refused, one failed while node2 was down, one
    indeterminate sent to node2 as it was killed. One record on two holders, read while node2 was down."""
    chain = [_block(h, (f"tx{h}",) if h <= 6 else ()) for h in range(1, 11)]
    chains = {n: list(chain) for n in NODES}
    chains["node2"] = chain[:9]  # a node may lag; a prefix is not a fork
    submissions = [Submission(f"tx{i}", NODES[i % 4], float(i) * 0.5, "acknowledged") for i in range(1, 7)]
    submissions += [
        Submission("bad", "node1", 1.0, "refused", "400 nonce"),
        Submission("down", "node2", 4.0, "failed", "connection refused"),
        Submission("cut", "node2", 3.0, "indeterminate", "connection reset"),
    ]
    samples = [HeightSample(t / 2, n, min(10, 1 + int(t / 2))) for t in range(0, 6) for n in NODES]
    samples += [HeightSample(t, n, 4) for t in (3.5, 4.0, 5.0, 6.0) for n in NODES if n != "node2"]
    samples += [HeightSample(t, "node2", None) for t in (3.5, 4.0, 5.0)]
    samples += [HeightSample(7.0, "node1", 5), HeightSample(7.5, "node2", 2), HeightSample(8.0, "node2", 5)]
    samples += [HeightSample(12.0, n, 10) for n in NODES]
    return History(
        submissions=submissions,
        faults=[Fault("kill", ("node2",), 3.0, 6.0)],
        samples=samples,
        reads=[
            ReadAttempt(4.0, "bafkrec", "node1", True, True, 1),
            ReadAttempt(4.5, "bafkrec", "node3", False, False, 1),
        ],
        pinned=[PinnedRecord("bafkrec", ("node2", "node3"))],
        chains=chains,
        ended_at=12.0,
    )


def failed_names(verdict: Verdict) -> set[str]:
    return {c.name for c in verdict.failed()}


def test_clean_history_passes() -> None:
    verdict = check(clean_history(), BOUNDS)
    assert verdict.ok, verdict.failed()
    assert verdict.counts["acknowledged"] == 6 and verdict.counts["lost"] == 0 and verdict.counts["indeterminate"] == 1
    [recovery] = verdict.recoveries
    assert recovery.resumed_s == pytest.approx(1.0) and recovery.caught_up_s == pytest.approx(2.0)


def test_fork_fails() -> None:
    h = clean_history()
    h.chains["node3"] = [*h.chains["node3"][:7], _block(8, tag="x"), *h.chains["node3"][8:]]
    verdict = check(h, BOUNDS)
    assert "no fork" in failed_names(verdict) and verdict.counts["forks"] == 1


def test_state_root_difference_fails() -> None:
    h = clean_history()
    h.chains["node4"][4] = dataclasses.replace(h.chains["node4"][4], state_root="other")
    assert failed_names(check(h, BOUNDS)) == {"equal state roots"}


def test_lost_acknowledged_tx_fails() -> None:
    h = clean_history()
    h.submissions.append(Submission("vanished", "node3", 2.0, "acknowledged"))
    verdict = check(h, BOUNDS)
    assert failed_names(verdict) == {"every acknowledged tx final"} and verdict.counts["lost"] == 1


def test_duplicate_tx_fails() -> None:
    h = clean_history()
    for n in NODES:
        h.chains[n][8] = dataclasses.replace(h.chains[n][8], txs=("tx3",))
    verdict = check(h, BOUNDS)
    assert failed_names(verdict) == {"no tx final twice"} and verdict.counts["duplicated"] == 1


def test_too_many_indeterminate_fails() -> None:
    h = clean_history()
    h.submissions += [Submission(f"cut{i}", "node2", 3.5, "indeterminate") for i in range(2)]
    assert failed_names(check(h, BOUNDS)) == {"indeterminate outcomes bounded"}


def test_indeterminate_from_a_healthy_node_fails() -> None:
    # node4 was never faulted: a lost transaction hiding as "no answer" must not pass.
    h = clean_history()
    h.submissions.append(Submission("hidden", "node4", 2.0, "indeterminate"))
    assert failed_names(check(h, BOUNDS)) == {"indeterminate only at faulted nodes"}


def test_liveness_late_fails() -> None:
    h = clean_history()
    # The chain stays at height 4 until 12 s: 6 s after the heal, over the 5 s bound.
    h.samples = [s for s in h.samples if s.t <= 6.0] + [HeightSample(12.0, n, 10) for n in NODES]
    verdict = check(h, BOUNDS)
    assert failed_names(verdict) == {"liveness after heal"}
    assert verdict.recoveries[0].recovery_s == pytest.approx(6.0)


def test_liveness_never_resumed_fails() -> None:
    h = clean_history()
    h.samples = [s for s in h.samples if s.t <= 6.0] + [HeightSample(12.0, n, 4) for n in NODES]
    verdict = check(h, BOUNDS)
    assert failed_names(verdict) == {"liveness after heal"} and verdict.recoveries[0].recovery_s is None


def test_restarted_node_never_catching_up_fails() -> None:
    h = clean_history()
    h.samples = [s for s in h.samples if s.node != "node2" or s.t < 7.0] + [HeightSample(12.0, "node2", 3)]
    assert failed_names(check(h, BOUNDS)) == {"liveness after heal"}


def test_unhealed_fault_fails() -> None:
    h = clean_history()
    h.faults = [Fault("pause", ("node2",), 3.0, None)]
    assert "liveness after heal" in failed_names(check(h, BOUNDS))


def test_overlapping_faults_are_one_episode() -> None:
    # 2 of 4 down: the chain cannot resume before the second node is back; recovery counts from then.
    faults = [
        Fault("kill", ("node1",), 1.0, 5.0),
        Fault("kill", ("node2",), 2.0, 8.0),
        Fault("pause", ("node3",), 20.0, 21.0),
    ]
    episodes = fault_episodes(faults, ended_at=30.0)
    assert [[f.nodes for f in e] for e in episodes] == [[("node1",), ("node2",)], [("node3",)]]


def test_record_with_too_few_holders_fails() -> None:
    h = clean_history()
    h.pinned = [PinnedRecord("bafkrec", ("node2",))]
    assert failed_names(check(h, BOUNDS)) == {"pinned records replicated"}


def test_record_unreadable_while_a_holder_lives_fails() -> None:
    h = clean_history()
    h.reads.append(ReadAttempt(5.0, "bafkrec", "node4", False, True, 1, "404"))
    assert failed_names(check(h, BOUNDS)) == {"pinned records readable while a holder lives"}


def test_unreadable_with_no_holder_alive_is_not_a_violation() -> None:
    h = clean_history()
    h.reads.append(ReadAttempt(5.0, "bafkrec", "node4", False, True, 0, "404"))
    assert check(h, BOUNDS).ok


def test_unauthorised_read_served_fails() -> None:
    h = clean_history()
    h.reads.append(ReadAttempt(5.0, "bafkrec", "node1", True, False, 2))
    assert failed_names(check(h, BOUNDS)) == {"no unauthorised read served"}


def test_history_round_trips_through_json() -> None:
    h = clean_history()
    again = History.from_json(h.to_json())
    assert again == h and check(again, BOUNDS).ok


def test_missing_evidence_fails_when_required() -> None:
    h = clean_history()
    required = dataclasses.replace(BOUNDS, min_evidence=1)
    assert failed_names(check(h, required)) == {"equivocation recorded as evidence"}
    for n in NODES:
        h.chains[n][5] = dataclasses.replace(h.chains[n][5], evidence=1)
    verdict = check(h, required)
    assert verdict.ok and verdict.counts["evidence"] == 1


def test_ack_voided_by_a_wipe_right_after_it_is_not_lost_but_counted() -> None:
    # docs/API.md: an acknowledgement is void when the node's disk is wiped before the tx reached a peer.
    h = clean_history()
    h.faults.append(Fault("wipe", ("node3",), 9.0, 10.0))
    h.submissions.append(Submission("wiped", "node3", 8.6, "acknowledged"))
    verdict = check(h, BOUNDS)
    assert verdict.ok and verdict.counts["voided_by_wipe"] == 1 and verdict.counts["lost"] == 0
    # Acknowledged long before the wipe: gossip had time to pass it on, so losing it is a loss.
    h.submissions[-1] = Submission("wiped", "node3", 6.0, "acknowledged")
    assert failed_names(check(h, BOUNDS)) == {"every acknowledged tx final"}
    # A kill voids nothing: the journal on disk survives it.
    h.faults[-1] = Fault("kill", ("node3",), 9.0, 10.0)
    h.submissions[-1] = Submission("wiped", "node3", 8.6, "acknowledged")
    assert failed_names(check(h, BOUNDS)) == {"every acknowledged tx final"}


def test_chaos_check_rechecks_a_run_from_its_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from node.cli.main import main

    journal = {
        "status": "completed",
        "experiment": {
            "title": "t",
            "configuration": {
                "seed": 3,
                "bounds": {"liveness_s": 5, "max_indeterminate": 2, "indeterminate_window_s": 1, "min_holders": 2},
            },
        },
    }
    (tmp_path / "journal.json").write_text(json.dumps(journal))
    h = clean_history()
    (tmp_path / "history.json").write_text(json.dumps(h.to_json()))
    assert main(["chaos", "check", str(tmp_path)]) == 0
    h.submissions.append(Submission("vanished", "node3", 2.0, "acknowledged"))
    (tmp_path / "history.json").write_text(json.dumps(h.to_json()))
    assert main(["chaos", "check", str(tmp_path)]) == 1
    assert "| every acknowledged tx final | NO |" in capsys.readouterr().out
