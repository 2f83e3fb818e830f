"""One byzantine validator of four, on a real cluster: whatever it does, the three honest nodes finalise the same
block at every height and the chain keeps going; an equivocation ends up on chain as evidence."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from node.cluster.config import dump_network, generate_network, load_network
from node.cluster.local import Cluster
from node.cluster.network_init import RESOLVED_NAME, free_ports, resolve_network
from node.p2p.identity import peer_id_from_seed
from primitives.keys import SigningKey
from tests.harness import http_json, node_processes, operator_token, wait_until

pytestmark = pytest.mark.cluster

BYZANTINE = "node2"
HONEST = ("node1", "node3", "node4")


@contextmanager
def cluster_with_byzantine(data_dir: Path, mode: str | None) -> Iterator[Cluster]:
    resolved = resolve_network(generate_network(4), data_dir)
    cluster = Cluster(resolved, data_dir)
    hostile = {"EHRNET_UNSAFE": "1", "EHRNET_UNSAFE_BYZANTINE": mode or "", "EHRNET_FAULT_CONTROL": "1"}
    try:
        for spec in resolved.nodes:
            cluster.spawn(spec.name, extra_env=hostile if spec.name == BYZANTINE and mode else None)
        cluster.wait_connected(timeout=60)
        yield cluster
    finally:
        cluster.down(timeout=5)
        for proc in node_processes():
            proc.kill()


def height(cluster: Cluster, name: str) -> int:
    status = cluster.status_of(name)
    return int(status["height"]) if status else -1


def block(cluster: Cluster, name: str, at: int) -> dict[str, Any]:
    found: dict[str, Any] = http_json("GET", f"{cluster.records[name].http_url}/blocks/{at}")
    return found


def byzantine_key(cluster: Cluster) -> str:
    status = cluster.status_of(BYZANTINE)
    assert status is not None
    return str(status["public_key"])


def assert_one_chain(cluster: Cluster, up_to: int) -> list[dict[str, Any]]:
    """Every honest node holds the same block at every height up to `up_to`; returns node1's blocks."""
    chain = []
    for at in range(1, up_to + 1):
        blocks = [block(cluster, name, at) for name in HONEST]
        assert len({b["hash"] for b in blocks}) == 1, f"honest nodes disagree at height {at}"
        assert len({b["state_root"] for b in blocks}) == 1
        chain.append(blocks[0])
    return chain


def run_past_byzantine_turns(cluster: Cluster, heights: int = 12) -> int:
    """Let the chain grow by `heights` (the byzantine validator proposes every fourth height, or takes a round)."""
    start = min(height(cluster, n) for n in HONEST)
    target = start + heights
    wait_until(
        lambda: min(height(cluster, n) for n in HONEST) >= target, timeout=180, interval=0.5, what="honest progress"
    )
    return target


def faults_of(cluster: Cluster, name: str) -> dict[str, Any]:
    url = f"{cluster.records[name].http_url}/admin/faults"
    found: dict[str, Any] = http_json("GET", url, token=operator_token(cluster, name))
    return found


def test_equivocating_validator_cannot_fork_and_its_equivocation_becomes_evidence(tmp_path: Path) -> None:
    with cluster_with_byzantine(tmp_path, "equivocate") as cluster:
        accused = byzantine_key(cluster)
        top = run_past_byzantine_turns(cluster)
        counts = faults_of(cluster, BYZANTINE)["byzantine"]
        assert counts["mode"] == "equivocate"
        assert counts["forged_proposals"] > 0 and counts["conflicting_votes"] > 0

        wait_until(lambda: evidence_against(cluster, accused), timeout=120, interval=1.0, what="evidence on chain")
        assert min(height(cluster, n) for n in HONEST) >= top


def test_invalid_block_proposer_never_gets_a_block_final(tmp_path: Path) -> None:
    with cluster_with_byzantine(tmp_path, "invalid-block") as cluster:
        accused = byzantine_key(cluster)
        top = run_past_byzantine_turns(cluster)
        assert faults_of(cluster, BYZANTINE)["byzantine"]["forged_proposals"] >= 2  # both kinds of invalid block
        chain = assert_one_chain(cluster, top)
        proposers = [entry["proposer"] for entry in chain]
        assert accused not in proposers  # every block it proposed was invalid, and none became final
        assert len(set(proposers)) == 3


def test_malformed_messages_neither_crash_nor_stall_honest_nodes(tmp_path: Path) -> None:
    with cluster_with_byzantine(tmp_path, "malformed") as cluster:
        wait_until(
            lambda: faults_of(cluster, BYZANTINE)["byzantine"]["garbage_sent"] >= 9,  # every kind at least once
            timeout=60,
            what="every kind of garbage sent",
        )
        top = run_past_byzantine_turns(cluster, heights=8)
        assert_one_chain(cluster, top)
        assert all(cluster.alive(name) for name in cluster.records)


def test_copied_validator_key_with_its_own_network_identity_cannot_fork_and_is_caught(tmp_path: Path) -> None:
    """A second process signs with a copy of node2's validator key in its own data dir (so with its own sign
    guard) under a libp2p identity of its own: at node2's turns both propose, each its own block, and both vote
    as their own views go. The honest three still agree, and the conflicting votes end up on chain as evidence."""
    with cluster_with_byzantine(tmp_path / "main", None) as cluster:
        twin = start_twin(cluster, tmp_path / "twin", own_identity=True)
        try:
            accused = byzantine_key(cluster)
            top = run_past_byzantine_turns(cluster)
            assert twin.alive("twin")
            wait_until(lambda: evidence_against(cluster, accused), timeout=120, interval=1.0, what="evidence")
            assert_one_chain(cluster, top)
        finally:
            twin.down(timeout=5)


def test_plain_copy_of_a_node_key_cannot_fork(tmp_path: Path) -> None:
    """A plain copy of node2's key also copies its peer ID. libp2p keeps one connection per peer ID, so the honest
    nodes never hear the copy on gossip (it follows the chain by block sync only): no fork, and the chain goes on."""
    with cluster_with_byzantine(tmp_path / "main", None) as cluster:
        twin = start_twin(cluster, tmp_path / "twin", own_identity=False)
        try:
            top = run_past_byzantine_turns(cluster, heights=8)
            assert twin.alive("twin")
            assert_one_chain(cluster, top)
        finally:
            twin.down(timeout=5)


def start_twin(cluster: Cluster, data_dir: Path, *, own_identity: bool) -> Cluster:
    """A process named `twin` with node2's key and the cluster's genesis, on its own ports, dialling the honest
    nodes (which do not dial it: it is not in their config)."""
    (data_dir / "twin").mkdir(parents=True)
    shutil.copy(Path(cluster.records[BYZANTINE].data_dir) / "node.key", data_dir / "twin" / "node.key")
    env: dict[str, str] = {}
    peer_id = cluster.records[BYZANTINE].peer_id
    if own_identity:
        network_key = SigningKey.load_or_create(data_dir / "twin" / "network.key")
        peer_id = peer_id_from_seed(network_key.seed)
        env = {"EHRNET_UNSAFE": "1", "EHRNET_UNSAFE_NETWORK_KEY": str(data_dir / "twin" / "network.key")}
        # The mesh is permissioned: an unknown identity's gossip is rejected and the identity banned. The attack
        # worth testing is an insider's — a member node signing with a copy of a validator's key — so the admin
        # makes the twin's identity a member first.
        subprocess.run(
            [sys.executable, "-m", "node.cli", "admin", "add-member", peer_id, "--data-dir", str(cluster.data_dir)],
            check=True,
            capture_output=True,
            timeout=60,
        )
    p2p_port, http_port = free_ports(2)
    spec = dataclasses.replace(
        cluster.network.node(BYZANTINE),
        name="twin",
        p2p_port=p2p_port,
        http_port=http_port,
        bootstrap=HONEST,
        roles=("validator",),
        peer_id=peer_id,
    )
    network = dataclasses.replace(cluster.network, nodes=(*cluster.network.nodes, spec))
    (data_dir / RESOLVED_NAME).write_text(dump_network(network))
    twin = Cluster(load_network(data_dir / RESOLVED_NAME), data_dir)
    twin.spawn("twin", extra_env=env)
    wait_until(lambda: twin.status_of("twin") is not None, timeout=60, what="the twin's API")
    return twin


def evidence_against(cluster: Cluster, accused: str) -> list[dict[str, Any]]:
    """The equivocations recorded on the honest nodes' (common) chain: the `equivocation` events of evidence
    transactions that executed (several nodes report one offence; only the first report is recorded). Every
    evidence transaction must accuse `accused` with two votes for different values."""
    recorded = []
    for entry in assert_one_chain(cluster, min(height(cluster, n) for n in HONEST)):
        for tx in entry["txs"]:
            if tx["kind"] != "evidence":
                continue
            votes = tx["body"]["votes"]
            assert {v["validator"] for v in votes} == {accused}
            assert votes[0]["block_hash"] != votes[1]["block_hash"]
            receipt = http_json("GET", f"{cluster.records[HONEST[0]].http_url}/tx/{tx['hash']}")["receipt"]
            if receipt["status"] == "ok":
                events = [e for e in receipt["events"] if e["name"] == "equivocation"]
                assert [e["attrs"]["validator"] for e in events] == [accused]
                recorded += events
    return recorded
