"""What an idle cluster costs: blocks per second and node CPU with nothing to do, for the network's
`idle_block_interval_ms` and, as the baseline in the same run, for a chain that starts the next height 250 ms
after each block whether or not there is work (how ehrnet ran before it waited for work).

Run: `.venv/bin/python -m bench.idle [--nodes 4] [--seconds 20] [--json]`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from node.client import NodeClient
from node.cluster.config import NetworkConfig, generate_network
from node.cluster.local import Cluster
from node.cluster.running import running_cluster

FORMER_PAUSE_MS = 250  # the pause after every block before ehrnet waited for work


def _heights(cluster: Cluster) -> list[int]:
    return [int(NodeClient.connect(r.http_url).status()["height"]) for r in cluster.records.values()]


def _cpu_seconds(procs: list[psutil.Process]) -> float:
    return float(sum(p.cpu_times().user + p.cpu_times().system for p in procs))


def measure(network: NetworkConfig, seconds: float, settle_s: float = 3.0) -> dict[str, Any]:
    """Start the cluster, let it settle, then sample heights and the nodes' CPU over `seconds`."""
    with tempfile.TemporaryDirectory() as tmp, running_cluster(Path(tmp), network) as cluster:
        procs = [psutil.Process(r.pid) for r in cluster.records.values() if r.pid is not None]
        time.sleep(settle_s)  # a benchmark's measurement window, not a test's synchronisation
        h0, c0, t0 = _heights(cluster), _cpu_seconds(procs), time.monotonic()
        time.sleep(seconds)
        h1, c1, t1 = _heights(cluster), _cpu_seconds(procs), time.monotonic()
        chain_bytes = sum(
            sum(f.stat().st_size for f in (Path(r.data_dir) / "chain").glob("*.mdb")) for r in cluster.records.values()
        )
    wall = t1 - t0
    return {
        "idle_block_interval_ms": network.idle_block_interval_ms,
        "blocks_per_s": round((max(h1) - max(h0)) / wall, 2),
        "node_cpu_cores": round((c1 - c0) / wall, 3),
        "chain_files_bytes_all_nodes": chain_bytes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    network = generate_network(args.nodes)
    eager = dataclasses.replace(network, block_interval_ms=FORMER_PAUSE_MS, idle_block_interval_ms=FORMER_PAUSE_MS)
    report = {"waits_for_work": measure(network, args.seconds), "baseline_eager": measure(eager, args.seconds)}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"idle cluster of {args.nodes} node processes, {args.seconds:.0f} s each")
    for label, row in report.items():
        print(
            f"  {label:<16} idle_block_interval {row['idle_block_interval_ms']:>5} ms: "
            f"{row['blocks_per_s']:5.2f} blocks/s, node CPU {row['node_cpu_cores']:.3f} cores"
        )
    base, new = report["baseline_eager"], report["waits_for_work"]
    if new["node_cpu_cores"] > 0:
        print(f"  CPU {base['node_cpu_cores'] / new['node_cpu_cores']:.1f}x lower, blocks "
              f"{base['blocks_per_s'] / max(new['blocks_per_s'], 0.01):.1f}x fewer")  # fmt: skip


if __name__ == "__main__":
    main()
