"""A real 4-node cluster with each node in its own network namespace (root only): a 2|2 partition leaves neither
side a quorum (3 of 4), so no block becomes final anywhere; after the heal blocks resume; and nothing of the
network is left behind."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from node.cluster.config import generate_network
from node.cluster.local import Cluster
from node.cluster.netns import NamespaceNetwork
from node.cluster.netns_cluster import start_netns_cluster
from tests.harness import holds_for, http_json, node_processes, wait_until

AVAILABLE, WHY_NOT = NamespaceNetwork.available()
pytestmark = [pytest.mark.cluster, pytest.mark.skipif(not AVAILABLE, reason=WHY_NOT)]


def heights(cluster: Cluster) -> dict[str, int]:
    found = {}
    for name in cluster.records:
        status = cluster.status_of(name)
        found[name] = int(status["height"]) if status else -1
    return found


def stable_heights(cluster: Cluster, seconds: float = 1.5) -> dict[str, int]:
    """Heights once a block that was already agreed when the cut came has landed (no change for `seconds`)."""
    last: dict[str, int] = {}

    def settled() -> dict[str, int]:
        nonlocal last
        now = heights(cluster)
        if now == last and holds_for(lambda: heights(cluster) == now, seconds):
            return now
        last = now
        return {}

    return wait_until(settled, timeout=30, interval=0.2, what="heights to settle after the cut")


def test_two_two_partition_stops_finality_on_both_sides_and_heal_resumes(tmp_path: Path) -> None:
    net = NamespaceNetwork()
    cluster: Cluster | None = None
    try:
        cluster = start_netns_cluster(generate_network(4), tmp_path, net, timeout=60)
        for name, record in cluster.records.items():
            assert record.http_url.startswith(f"http://{net.ip_of(name)}:")  # listening on its namespace address
            assert record.netns == net.namespace_of(name)
        wait_until(lambda: min(heights(cluster).values()) >= 2, timeout=60, what="the first blocks")

        net.partition([["node1", "node2"], ["node3", "node4"]])
        frozen = stable_heights(cluster)
        # Two of four validators hold no quorum: nothing becomes final on either side (idle blocks would come
        # every 2 s with a quorum, so 8 s without one is four missed blocks).
        unchanged = holds_for(lambda: heights(cluster) == frozen, 8.0)
        assert unchanged, f"a block became final: {frozen} → {heights(cluster)}"

        net.heal()
        target = max(frozen.values()) + 2
        wait_until(
            lambda: min(heights(cluster).values()) >= target, timeout=120, interval=0.5, what="blocks after heal"
        )
        statuses = [cluster.status_of(n) for n in cluster.records]
        assert all(s is not None for s in statuses)
        at = min(int(s["height"]) for s in statuses if s)
        hashes = {cluster_block_hash(cluster, n, at) for n in cluster.records}
        assert len(hashes) == 1  # one chain
    finally:
        if cluster is not None:
            cluster.down(timeout=5)
        net.cleanup()
    assert not node_processes()
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    assert f"-{net.tag}-" not in names
    assert f"ehrb{net.tag}" not in links and f"ehrv{net.tag}" not in links


def cluster_block_hash(cluster: Cluster, name: str, height: int) -> str:
    return str(http_json("GET", f"{cluster.records[name].http_url}/blocks/{height}")["hash"])
