"""A local cluster started meshed, and one that lives for a with-block and leaves no process behind.

`start_cluster` is what `ehrnet cluster up` runs; `running_cluster` wraps it for tests and benchmarks, which must
not leave node processes on a shared machine even when they fail half-way (a node stuck in start-up does not
answer the polite shutdown, so what is left is killed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from node.cluster.config import NetworkConfig, generate_network
from node.cluster.errors import ClusterError
from node.cluster.local import Cluster
from node.cluster.network_init import resolve_network


def start_cluster(
    template: NetworkConfig, data_dir: Path, timeout: float, progress: Callable[[str], None] | None = None
) -> Cluster:
    """Resolve, spawn every node and wait until meshed (`progress` gets a line whenever that changes); on failure
    nothing is left running."""
    resolved = resolve_network(template, data_dir)
    cluster = Cluster(resolved, data_dir)
    running = [n for n in cluster.records if cluster.alive(n)]
    if running:
        raise ClusterError(f"--data-dir: a cluster is already running in {data_dir} ({', '.join(running)})")
    try:
        for node in resolved.nodes:
            cluster.spawn(node.name)
        cluster.wait_connected(timeout=timeout, progress=progress)
    except BaseException:
        cluster.down(timeout=5)
        raise
    return cluster


def node_processes() -> list[psutil.Process]:
    """Live ehrnet node processes started from this process (its children)."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and "node.cli" in " ".join(proc.cmdline()):
                found.append(proc)
        except psutil.NoSuchProcess:
            continue
    return found


@contextmanager
def running_cluster(data_dir: Path, network: NetworkConfig | None = None, n: int = 4) -> Iterator[Cluster]:
    """Start a meshed cluster of real node processes; on exit stop it and SIGKILL anything left."""
    cluster = start_cluster(network or generate_network(n), data_dir, timeout=30)
    try:
        yield cluster
    finally:
        cluster.down(timeout=5)
        for proc in node_processes():
            proc.kill()
            proc.wait(5)


def operator_token(cluster: Cluster, name: str) -> str:
    """The bearer token of a node's operator routes (written to its data dir at start-up)."""
    return (Path(cluster.records[name].data_dir) / "api.token").read_text().strip()
