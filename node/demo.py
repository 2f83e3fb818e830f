"""`ehrnet demo`: the project's main job on its embedded default.

Until the EHR sharing protocol lands (issue 7), the demo shows the foundation every later step stands on: a local
4-node cluster of real processes starts, meshes over Noise-encrypted libp2p connections, every node's gossip
reaches every other node, and the cluster stops leaving no process behind. Each step is narrated with timings.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.cluster import Cluster, ClusterError, default_data_dir
from node.cluster_cli import print_table, start_cluster
from node.config import generate_network

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]


def register(sub: SubParsers) -> None:
    demo = sub.add_parser("demo", help="run the end-to-end demo on a local cluster")
    demo.add_argument("-n", type=int, default=4, help="number of nodes (default 4)")
    demo.add_argument("--data-dir", type=Path, default=None, help="where the demo cluster keeps its state")
    demo.add_argument("--keep", action="store_true", help="leave the cluster running for exploring")
    demo.set_defaults(func=run_demo)


def _call(cluster: Cluster, name: str, method: str, path: str, body: Any = None) -> Any:
    token = (Path(cluster.records[name].data_dir) / "api.token").read_text().strip()
    request = urllib.request.Request(
        cluster.records[name].http_url + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


class Narrator:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.step = 0

    def say(self, text: str) -> float:
        self.step += 1
        print(f"\n[{time.monotonic() - self.started:6.2f} s] step {self.step}: {text}", flush=True)
        return time.monotonic()

    def done(self, since: float, detail: str = "") -> None:
        print(
            f"          done in {1000 * (time.monotonic() - since):.0f} ms{'; ' + detail if detail else ''}", flush=True
        )


def _gossip_round(cluster: Cluster) -> tuple[int, int, list[float]]:
    """Each node publishes probes until every node has heard every other; returns delivery figures."""
    names = list(cluster.records)
    ids = {n: cluster.records[n].peer_id for n in names}
    since = time.time_ns()
    deadline = time.monotonic() + 20
    while True:
        for name in names:
            _call(cluster, name, "POST", "/probe/publish", {"count": 1})
        time.sleep(0.3)
        heard = {
            rcv: {r["origin"]: r for r in _call(cluster, rcv, "GET", f"/probe/received?since_ns={since}")["records"]}
            for rcv in names
        }
        pairs = [(o, r) for r in names for o in names if o != r]
        delivered = sum(1 for o, r in pairs if ids[o] in heard[r])
        if delivered == len(pairs) or time.monotonic() > deadline:
            latencies = [(rec["received_ns"] - rec["sent_ns"]) / 1e6 for r in names for rec in heard[r].values()]
            return delivered, len(pairs), latencies


def run_demo(args: argparse.Namespace) -> int:
    data_dir: Path = (args.data_dir or default_data_dir().parent / "demo").resolve()
    say = Narrator()
    t = say.say(f"start a local {args.n}-node cluster (real processes, Noise-encrypted libp2p) in {data_dir}")
    cluster = start_cluster(generate_network(args.n, name=f"demo{args.n}"), data_dir, timeout=30)
    try:
        say.done(t, "every node is connected to every other node")
        print_table(cluster)
        t = say.say("every node gossips a probe message; each must reach every other node")
        delivered, expected, latencies = _gossip_round(cluster)
        if delivered != expected:
            raise ClusterError(f"gossip reached {delivered} of {expected} node pairs")
        say.done(t, f"{delivered}/{expected} deliveries, median latency {statistics.median(latencies):.1f} ms")
        t = say.say("check each node's /status")
        for name in cluster.records:
            status = cluster.status_of(name)
            if status is None or len(status["peers"]) != args.n - 1:
                raise ClusterError(f"{name} is not connected to all {args.n - 1} peers")
        say.done(t, "all nodes report all peers")
    except BaseException:
        cluster.down(timeout=5)
        raise
    if args.keep:
        print(f"\ncluster left running; stop it with: ehrnet cluster down --data-dir {data_dir}")
        return 0
    t = say.say("stop the cluster (SIGTERM; nodes shut down in order)")
    cluster.down()
    left = [n for n in cluster.records if cluster.alive(n)]
    if left:
        raise ClusterError(f"nodes still running after shutdown: {', '.join(left)}")
    say.done(t, "no node process left")
    print("\ndemo finished: OK")
    return 0
