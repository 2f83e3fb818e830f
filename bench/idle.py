"""What an idle cluster costs: blocks per second and node CPU with nothing to do, for the network's
`idle_block_interval_ms` and, as the baseline in the same run, for a chain that starts the next height 250 ms
after each block whether or not there is work (how ehrnet ran before it waited for work).

Run: `.venv/bin/python -m bench.idle [--nodes 4] [--seconds 20] [--json]`.

`--compare-code DIR` measures, in the same run and instead of the eager baseline, the same network run by the node
code checked out in DIR (e.g. `git worktree add /tmp/before COMMIT`): a before/after of a change on one machine
within minutes. Large networks take long to mesh on two cores: `--nodes 16 --mesh-timeout 180`. Each row reports
the load average around it — on a shared machine the figures are only comparable within one run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

from node.client import NodeClient
from node.cluster.config import NetworkConfig, generate_network
from node.cluster.local import Cluster
from node.cluster.running import node_processes, start_cluster

FORMER_PAUSE_MS = 250  # the pause after every block before ehrnet waited for work


def _heights(cluster: Cluster) -> list[int]:
    return [int(NodeClient.connect(r.http_url).status()["height"]) for r in cluster.records.values()]


def _cpu_seconds(procs: list[psutil.Process]) -> float:
    return float(sum(p.cpu_times().user + p.cpu_times().system for p in procs))


@contextmanager
def _cluster(data_dir: Path, network: NetworkConfig, mesh_timeout_s: float, code_dir: Path | None) -> Iterator[Cluster]:
    """A meshed cluster whose node processes run the code in `code_dir` (default: this checkout); none is left."""
    saved_cwd, saved_path = os.getcwd(), os.environ.get("PYTHONPATH")
    if code_dir is not None:  # `python -m node.cli` in a child imports from its working directory first
        os.chdir(code_dir)
        os.environ["PYTHONPATH"] = str(code_dir)
    try:
        cluster = start_cluster(network, data_dir, timeout=mesh_timeout_s)
    finally:
        os.chdir(saved_cwd)
        if saved_path is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved_path
    try:
        yield cluster
    finally:
        cluster.down(timeout=5)
        for proc in node_processes():
            proc.kill()
            proc.wait(5)


def measure(
    network: NetworkConfig,
    seconds: float,
    settle_s: float = 3.0,
    mesh_timeout_s: float = 30.0,
    code_dir: Path | None = None,
) -> dict[str, Any]:
    """Start the cluster, let it settle, then sample heights and the nodes' CPU over `seconds`."""
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp, _cluster(Path(tmp), network, mesh_timeout_s, code_dir) as cluster:
        procs = [psutil.Process(r.pid) for r in cluster.records.values() if r.pid is not None]
        time.sleep(settle_s)  # a benchmark's measurement window, not a test's synchronisation
        h0, c0, t0 = _heights(cluster), _cpu_seconds(procs), time.monotonic()
        time.sleep(seconds)
        h1, c1, t1 = _heights(cluster), _cpu_seconds(procs), time.monotonic()
        chain_bytes = sum(
            sum(f.stat().st_size for f in (Path(r.data_dir) / "chain").glob("*.mdb")) for r in cluster.records.values()
        )
    wall = t1 - t0
    blocks_per_s = (max(h1) - max(h0)) / wall
    return {
        "code": str(code_dir) if code_dir is not None else "this checkout",
        "nodes": len(network.nodes),
        "idle_block_interval_ms": network.idle_block_interval_ms,
        "blocks_per_s": round(blocks_per_s, 2),
        "blocks_per_idle_interval": round(blocks_per_s * network.idle_block_interval_ms / 1000, 2),
        "node_cpu_cores": round((c1 - c0) / wall, 3),
        "chain_files_bytes_all_nodes": chain_bytes,
        "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],  # before, after
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds between meshed and the measurement")
    parser.add_argument("--mesh-timeout", type=float, default=30.0, help="seconds allowed for the cluster to mesh")
    parser.add_argument("--compare-code", type=Path, help="a checkout whose node code is measured as the baseline")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    network = generate_network(args.nodes)
    timing = {"settle_s": args.settle, "mesh_timeout_s": args.mesh_timeout}
    if args.compare_code is not None:
        code_dir = args.compare_code.resolve()
        base_label = f"code in {code_dir}"
        baseline = measure(network, args.seconds, code_dir=code_dir, **timing)
        current = measure(network, args.seconds, **timing)
    else:
        eager = dataclasses.replace(network, block_interval_ms=FORMER_PAUSE_MS, idle_block_interval_ms=FORMER_PAUSE_MS)
        base_label = "baseline_eager"
        current = measure(network, args.seconds, **timing)
        baseline = measure(eager, args.seconds, **timing)
    report = {"this_checkout": current, base_label: baseline}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"idle cluster of {args.nodes} node processes, {args.seconds:.0f} s each")
    for label, row in report.items():
        print(
            f"  {label:<16} idle_block_interval {row['idle_block_interval_ms']:>5} ms: "
            f"{row['blocks_per_s']:5.2f} blocks/s ({row['blocks_per_idle_interval']:.2f} per idle interval), "
            f"node CPU {row['node_cpu_cores']:.3f} cores, load average {'-'.join(map(str, row['load_average']))}"
        )
    if current["node_cpu_cores"] > 0:
        print(f"  this checkout: {baseline['node_cpu_cores'] / current['node_cpu_cores']:.1f}x less CPU, "
              f"{current['blocks_per_s'] / max(baseline['blocks_per_s'], 0.01):.2f}x the blocks")  # fmt: skip


if __name__ == "__main__":
    main()
