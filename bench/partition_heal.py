"""How soon a 4-node chain finalises again after a 2|2 partition heals, against the 5 s target.

Two ways to partition, each repeated `--reps` times on one cluster:
- netns (root only): every node in its own network namespace, links cut at layer 2 (node/cluster/netns.py) — packets
  vanish silently, so connections must notice the silence themselves (the keepalive) before redialling;
- gate: nodes on loopback with fault control on, each side refusing the other's peer IDs
  (`POST /admin/faults/gate`) — connections are closed at once, so only reconnection and consensus are timed.
The gate run is the baseline in the same run: the difference is what a silent cut costs.

Each repetition: wait for a block, partition, check that no block becomes final for `--hold` seconds (neither
side has 3 of 4), heal, and time the first final block anywhere and the moment every node has it.

Run: `.venv/bin/python -m bench.partition_heal [--reps 3] [--hold 10] [--json]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from node.client import NodeClient
from node.cluster.conditions import holds_for, wait_until
from node.cluster.config import generate_network
from node.cluster.local import Cluster
from node.cluster.netns import NamespaceNetwork
from node.cluster.netns_cluster import start_netns_cluster
from node.cluster.network_init import resolve_network
from node.cluster.running import node_processes, operator_token

SIDES = (["node1", "node2"], ["node3", "node4"])
TARGET_S = 5.0


def _heights(cluster: Cluster) -> dict[str, int]:
    found = {}
    for name in cluster.records:
        status = cluster.status_of(name)
        found[name] = int(status["height"]) if status else -1
    return found


def _rounds(
    cluster: Cluster, cut: Callable[[], None], heal: Callable[[], None], reps: int, hold: float
) -> list[dict[str, float]]:
    return [_one_round(cluster, cut, heal, hold) for _ in range(reps)]


def _one_round(cluster: Cluster, cut: Callable[[], None], heal: Callable[[], None], hold: float) -> dict[str, float]:
    start = max(_heights(cluster).values())
    wait_until(lambda: min(_heights(cluster).values()) > start, timeout=60, what="a block before the cut")
    cut()
    time.sleep(1.0)  # a block already agreed when the cut came may still land
    frozen = _heights(cluster)
    if not holds_for(lambda: _heights(cluster) == frozen, hold):
        raise SystemExit(f"a block became final during the partition: {frozen} → {_heights(cluster)}")
    top = max(frozen.values())
    healed = time.monotonic()
    heal()
    wait_until(lambda: max(_heights(cluster).values()) > top, timeout=120, interval=0.05, what="a block")
    first = time.monotonic() - healed
    wait_until(lambda: min(_heights(cluster).values()) > top, timeout=120, interval=0.05, what="all nodes")
    return {"first_block_s": first, "all_nodes_s": time.monotonic() - healed}


def _netns(reps: int, hold: float) -> list[dict[str, float]] | str:
    ok, why = NamespaceNetwork.available()
    if not ok:
        return why
    net = NamespaceNetwork()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = None
        try:
            cluster = start_netns_cluster(generate_network(4), Path(tmp), net, timeout=60)
            return _rounds(cluster, lambda: net.partition(SIDES), net.heal, reps, hold)
        finally:
            if cluster is not None:
                cluster.down(timeout=5)
            net.cleanup()


def _gate(reps: int, hold: float) -> list[dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        resolved = resolve_network(generate_network(4), Path(tmp))
        cluster = Cluster(resolved, Path(tmp))
        try:
            for spec in resolved.nodes:
                cluster.spawn(spec.name, extra_env={"EHRNET_FAULT_CONTROL": "1"})
            cluster.wait_connected(timeout=60)

            def gate(split: bool) -> None:
                for side, other in (SIDES, SIDES[::-1]):
                    blocked = [cluster.records[n].peer_id for n in other] if split else []
                    for name in side:
                        NodeClient.connect(cluster.records[name].http_url, operator_token(cluster, name)).gate(blocked)

            return _rounds(cluster, lambda: gate(True), lambda: gate(False), reps, hold)
        finally:
            cluster.down(timeout=5)
            for proc in node_processes():
                proc.kill()


def _summary(rounds: list[dict[str, float]]) -> dict[str, Any]:
    first = [r["first_block_s"] for r in rounds]
    return {
        "rounds": rounds,
        "first_block_median_s": statistics.median(first),
        "first_block_max_s": max(first),
        "all_nodes_median_s": statistics.median(r["all_nodes_s"] for r in rounds),
        "within_target": all(f <= TARGET_S for f in first),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--hold", type=float, default=10.0, help="seconds each partition is held")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    netns = _netns(args.reps, args.hold)
    results["netns"] = _summary(netns) if isinstance(netns, list) else {"skipped": netns}
    results["gate"] = _summary(_gate(args.reps, args.hold))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"2|2 partition of 4 validators held {args.hold:.0f} s, {args.reps} reps; target: first block ≤ {TARGET_S} s")
    for name, doc in results.items():
        if "skipped" in doc:
            print(f"  {name:<6} skipped: {doc['skipped']}")
            continue
        firsts = ", ".join(f"{r['first_block_s']:.2f}" for r in doc["rounds"])
        print(
            f"  {name:<6} first final block after heal: median {doc['first_block_median_s']:.2f} s "
            f"(max {doc['first_block_max_s']:.2f}; each {firsts}); on all nodes: median "
            f"{doc['all_nodes_median_s']:.2f} s; within target: {doc['within_target']}"
        )
    gate, netns_doc = results["gate"], results["netns"]
    if "skipped" not in netns_doc:
        ratio = netns_doc["first_block_median_s"] / gate["first_block_median_s"]
        print(f"  silent cut / gate (median first block): {ratio:.2f}×")


if __name__ == "__main__":
    main()
