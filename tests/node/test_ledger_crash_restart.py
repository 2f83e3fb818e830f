"""Crash-restart liveness on real node processes (4 validators, real libp2p, real LMDB, real signatures).

1. Two of four validators crash right after signing a precommit for a block (the `crash-after-precommit` fault
   point, node/faults/points.py), while transactions flow. The two survivors precommitted that block too, so they
   are locked on it (Buchman, Kwon, Milosevic 2018, Algorithm 1 line 36) and may only re-propose it; the two that
   come back hold neither the block's transactions nor, necessarily, the prevotes that justify it. The chain must
   resume once they are back, without a fork.
2. A SIGKILLed validator restarted while the others went on must catch up within seconds of its API answering.

Each test prints the measured figure; the asserted bounds are generous on purpose (the machine is shared).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from consensus.tx import Tx
from node.client import NodeError
from node.cluster.config import NetworkConfig, generate_network
from node.cluster.local import Cluster
from node.cluster.network_init import resolve_network
from node.faults.points import CRASH_AFTER_PRECOMMIT, CRASH_BEFORE_PRECOMMIT, ENV_VAR, FAULT_EXIT_CODE
from primitives.keys import SigningKey
from tests.harness import http_json, node_processes, wait_until

pytestmark = pytest.mark.cluster

# Target ≤ 5 s on an idle machine; the assertion leaves room for a loaded one.
RESUME_BOUND_S = 20.0
CATCH_UP_BOUND_S = 20.0


def height(cluster: Cluster, name: str) -> int:
    status = cluster.status_of(name)
    return int(status["height"]) if status is not None else -1


def moment_when(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """The monotonic time at which `predicate` was first seen true (polled every 20 ms)."""
    return wait_until(lambda: time.monotonic() if predicate() else 0.0, timeout=timeout, interval=0.02, what=what)


def block_hash(cluster: Cluster, name: str, h: int) -> str:
    return str(http_json("GET", f"{cluster.records[name].http_url}/blocks/{h}")["hash"])


class TxFlow:
    """Signed transactions posted round-robin to the live nodes from a background thread (a fresh key per
    transaction, so a node that loses one never leaves the next with a nonce gap)."""

    def __init__(self, cluster: Cluster, chain_id: str, rate_per_s: float = 20.0) -> None:
        self.cluster, self.chain_id, self.period = cluster, chain_id, 1.0 / rate_per_s
        self.acknowledged = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TxFlow:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        index = 0
        while not self._stop.wait(self.period):
            names = [n for n in self.cluster.records if self.cluster.alive(n)]
            if not names:
                continue
            name = names[index % len(names)]
            index += 1
            tx = Tx.create(SigningKey.generate(), self.chain_id, "record", 0, {"key": b"k", "value": b"v%d" % index})
            try:
                http_json("POST", f"{self.cluster.records[name].http_url}/tx", {"tx": tx.raw.hex()}, timeout=2)
                self.acknowledged += 1
            except NodeError:
                continue  # the node is down or busy: the flow goes on with the next one


def start_with_env(template: NetworkConfig, data_dir: Path, env: dict[str, dict[str, str]]) -> Cluster:
    """Like `running_cluster`, but each node can get its own environment (to arm a fault point)."""
    cluster = Cluster(resolve_network(template, data_dir), data_dir)
    for name in cluster.records:
        cluster.spawn(name, env.get(name))
    cluster.wait_connected(timeout=30)
    return cluster


def stop_all(cluster: Cluster) -> None:
    cluster.down(timeout=5)
    for proc in node_processes():
        proc.kill()
        proc.wait(5)


def assert_no_fork(cluster: Cluster, names: list[str]) -> None:
    top = min(height(cluster, n) for n in names)
    for h in range(1, top + 1):
        assert len({block_hash(cluster, n, h) for n in names}) == 1, f"nodes disagree at height {h}"


@pytest.mark.parametrize("point", [CRASH_BEFORE_PRECOMMIT, CRASH_AFTER_PRECOMMIT])
def test_two_validators_crashing_at_their_precommit_come_back_and_the_chain_resumes(tmp_path: Path, point: str) -> None:
    # An idle chain makes no empty blocks here, so the heights the fault point fires at carry transactions.
    template = dataclasses.replace(generate_network(4), idle_block_interval_ms=60_000)
    names = [node.name for node in template.nodes]
    crashers = names[2:]
    survivors = names[:2]
    arm_at = 3
    armed = {ENV_VAR: f"{point}@{arm_at}"}
    cluster = start_with_env(template, tmp_path / "net", {name: armed for name in crashers})
    try:
        chain_id = str(http_json("GET", f"{cluster.records[names[0]].http_url}/status")["chain_id"])
        with TxFlow(cluster, chain_id) as flow:
            # Both armed validators precommit a block at height ≥ arm_at and exit before sending it.
            for name in crashers:
                code = cluster.wait_exit(name, timeout=60)
                assert code == FAULT_EXIT_CODE, f"{name} exited with {code}:\n{cluster.log_tail(name)}"
            halted = max(height(cluster, n) for n in survivors)
            # Two of four is below the quorum: no block can be final until they are back.
            assert halted >= arm_at - 1

            for name in crashers:
                # They come back without the transactions they held (as after a disk replacement, or a mempool
                # not yet on disk at the crash): the block their peers are locked on must reach them some other
                # way than from their own mempool.
                shutil.rmtree(Path(cluster.records[name].data_dir) / "mempool", ignore_errors=True)
                cluster.spawn(name)  # the fault point is not armed again
            quorum_back = moment_when(
                lambda: any(cluster.status_of(n) is not None for n in crashers),
                timeout=60,
                what="a restarted validator answering /status",
            )
            all_back = moment_when(
                lambda: all(cluster.status_of(n) is not None for n in crashers),
                timeout=60,
                what="both restarted validators answering /status",
            )
            resumed = moment_when(
                lambda: max(height(cluster, n) for n in survivors) > halted,
                timeout=RESUME_BOUND_S + (all_back - quorum_back),
                what=f"a block after height {halted} final on a survivor",
            )
            print(
                f"\nfirst final block {resumed - quorum_back:.2f} s after quorum returned "
                f"({resumed - all_back:.2f} s after both restarted validators answered; "
                f"{flow.acknowledged} transactions acknowledged)"
            )
            assert resumed - quorum_back <= RESUME_BOUND_S
            # All four go on together, and the block the crashed pair had precommitted is final everywhere.
            target = halted + 2
            wait_until(
                lambda: all(height(cluster, n) >= target for n in names),
                timeout=60,
                what=f"height {target} on every node",
            )
        assert_no_fork(cluster, names)
        block = http_json("GET", f"{cluster.records[names[0]].http_url}/blocks/{halted + 1}")
        print(f"the block final after the restart holds {len(block.get('txs', []))} transactions")
    finally:
        stop_all(cluster)


def test_a_restarted_validator_catches_up_within_seconds_of_its_api_answering(tmp_path: Path) -> None:
    template = generate_network(4)
    names = [node.name for node in template.nodes]
    cluster = start_with_env(template, tmp_path / "net", {})
    try:
        chain_id = str(http_json("GET", f"{cluster.records[names[0]].http_url}/status")["chain_id"])
        lagger, others = names[3], names[:3]
        with TxFlow(cluster, chain_id):
            wait_until(lambda: min(height(cluster, n) for n in names) >= 2, timeout=30, what="height 2 everywhere")
            cluster.kill(lagger)
            left_at = max(height(cluster, n) for n in others)
            wait_until(
                lambda: min(height(cluster, n) for n in others) >= left_at + 30,
                timeout=90,
                what="the others 30 blocks further",
            )
            cluster.spawn(lagger)
            answered_status: dict[str, Any] = wait_until(
                lambda: cluster.status_of(lagger) or {}, timeout=60, interval=0.02, what=f"{lagger} answering /status"
            )
            answered = time.monotonic()
            head = max(height(cluster, n) for n in others)
            caught_up = moment_when(
                lambda: height(cluster, lagger) >= head, timeout=CATCH_UP_BOUND_S, what=f"{lagger} at height {head}"
            )
            print(
                f"\nrestarted node caught up {caught_up - answered:.2f} s after its API answered "
                f"(from height {answered_status['height']} to {head})"
            )
        assert caught_up - answered <= CATCH_UP_BOUND_S
        assert_no_fork(cluster, names)
    finally:
        stop_all(cluster)


def test_all_four_crashing_after_their_precommit_come_back_and_finalise_that_block(tmp_path: Path) -> None:
    # Every validator signs and records its precommit for block B and dies before sending it: a quorum of
    # precommits for B exists (on three or four disks) but no node holds B in memory. After the restart the
    # replayed precommits finalise B — which needs B itself, kept on disk with the precommit — and nothing else
    # may become final at that height.
    template = dataclasses.replace(generate_network(4), idle_block_interval_ms=60_000)
    names = [node.name for node in template.nodes]
    armed = {ENV_VAR: f"{CRASH_AFTER_PRECOMMIT}@3"}
    cluster = start_with_env(template, tmp_path / "net", {name: armed for name in names})
    try:
        chain_id = str(http_json("GET", f"{cluster.records[names[0]].http_url}/status")["chain_id"])
        with TxFlow(cluster, chain_id):
            wait_until(
                lambda: sum(not cluster.alive(n) for n in names) >= 3, timeout=60, what="three validators crashing"
            )
        # Three recorded precommits are already a quorum. A fourth that missed the prevotes (a lost message: the
        # others are dead and cannot send them again) never precommits; it is killed like a power cut would.
        crashed = [n for n in names if cluster.wait_exit(n, timeout=10) == FAULT_EXIT_CODE]
        assert len(crashed) >= 3, [cluster.log_tail(n) for n in names]
        for name in set(names) - set(crashed):
            cluster.kill(name)
        precommitted = {}
        for name in crashed:
            record = json.loads((Path(cluster.records[name].data_dir) / "signed_votes.json").read_text())
            [(slot, value)] = [(k, v) for k, v in record["signed"].items() if k.endswith("/2") and v != "nil"]
            precommitted[name] = (int(slot.split("/")[0]), value)
        assert len(set(precommitted.values())) == 1, precommitted  # one block, one height
        [(crash_height, block)] = set(precommitted.values())

        for name in names:
            cluster.spawn(name)
        back = moment_when(
            lambda: all(cluster.status_of(n) is not None for n in names), timeout=60, what="all four answering"
        )
        final = moment_when(
            lambda: all(height(cluster, n) >= crash_height for n in names),
            timeout=RESUME_BOUND_S,
            what=f"height {crash_height} final everywhere",
        )
        print(f"\nthe precommitted block final {final - back:.2f} s after all four answered again")
        assert all(block_hash(cluster, n, crash_height) == block for n in names)
        assert_no_fork(cluster, names)
    finally:
        stop_all(cluster)
