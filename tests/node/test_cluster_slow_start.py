"""`ehrnet cluster up` and `cluster restart` with a node that is slow to start, as on a loaded machine where its
imports take longer than the wait, and with a paused peer: progress while waiting, a timeout that names the slow
node with its log tail and the `--timeout` option, and a restart that exits 0 whenever the node came up.

A node is made slow by a `sitecustomize` module on PYTHONPATH that sleeps before anything else runs in the
process named by EHRNET_TEST_SLOW_NODE: the same effect as slow imports, with real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from node.cluster.local import Cluster
from tests.harness import node_processes, running_cluster, wait_until

pytestmark = pytest.mark.cluster

SITECUSTOMIZE = """
import os, sys, time
_slow = os.environ.get("EHRNET_TEST_SLOW_NODE")
_argv = getattr(sys, "orig_argv", [])
if _slow and "--name" in _argv and _argv[_argv.index("--name") + 1] == _slow:
    time.sleep(float(os.environ["EHRNET_TEST_SLOW_SECONDS"]))
"""


def slow_env(tmp_path: Path, node: str, seconds: float) -> dict[str, str]:
    hooks = tmp_path / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)
    path = os.pathsep.join(p for p in (str(hooks), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "EHRNET_TEST_SLOW_NODE": node, "EHRNET_TEST_SLOW_SECONDS": str(seconds)}


def ehrnet(*argv: str, env: dict[str, str] | None = None, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "node.cli", *argv], capture_output=True, text=True, env=env, timeout=timeout
    )


def test_cluster_up_timeout_names_the_slow_node_its_log_and_the_option(tmp_path: Path) -> None:
    data = tmp_path / "up"
    up = ehrnet(
        "cluster", "up", "-n", "2", "--detach", "--timeout", "10", "--data-dir", str(data),
        env=slow_env(tmp_path, "node2", 60),
    )  # fmt: skip
    assert up.returncode == 1, up.stderr
    assert "no answer yet: " in up.stderr  # progress while waiting
    assert "node2 (pid" in up.stderr and "no answer on its HTTP API yet" in up.stderr
    # node2 is named first unless node1 did not answer either (a loaded machine); its log tail follows.
    assert "node2's log" in up.stderr or "node1 (pid" in up.stderr.split("node2 (pid")[0]
    assert "'s log (" in up.stderr
    assert "--timeout 20" in up.stderr  # the option, with a larger value to try
    assert not node_processes()  # a failed start leaves nothing running


def test_restart_of_a_node_slower_than_15_s_exits_0_once_it_is_up(tmp_path: Path) -> None:
    # A restarted node's API answered 22 s after restart on a loaded machine, and `cluster restart` gave up after a
    # fixed 15 s with exit 2 although the node then came up. The default wait is longer now and shows progress.
    with cli_managed_cluster(tmp_path / "c", n=2) as cluster:
        restart = ehrnet(
            "cluster", "restart", "node2", "--data-dir", str(cluster.data_dir), env=slow_env(tmp_path, "node2", 17)
        )
        assert restart.returncode == 0, restart.stderr
        assert "node2 restarted" in restart.stdout
        assert "no answer yet: node2" in restart.stderr
        assert _fresh(cluster).status_of("node2") is not None


def test_restart_timeout_exits_1_and_leaves_the_node_starting(tmp_path: Path) -> None:
    with cli_managed_cluster(tmp_path / "c", n=2) as cluster:
        restart = ehrnet(
            "cluster",
            "restart",
            "node2",
            "--timeout",
            "2",
            "--data-dir",
            str(cluster.data_dir),
            env=slow_env(tmp_path, "node2", 6),
        )
        assert restart.returncode == 1, restart.stderr
        assert "node2 (pid" in restart.stderr and "--timeout 4" in restart.stderr
        assert "keeps starting in the background" in restart.stderr
        fresh = _fresh(cluster)
        wait_until(lambda: fresh.status_of("node2"), timeout=30, what="node2 comes up after the restart gave up")
        fresh.wait_connected(["node2"], timeout=30)


def test_restart_does_not_wait_for_a_paused_peer(tmp_path: Path) -> None:
    with cli_managed_cluster(tmp_path / "c", n=3) as cluster:
        paused = cluster.records["node3"].pid
        assert paused is not None
        os.kill(paused, signal.SIGSTOP)
        try:
            restart = ehrnet("cluster", "restart", "node2", "--data-dir", str(cluster.data_dir))
        finally:
            os.kill(paused, signal.SIGCONT)
        assert restart.returncode == 0, restart.stderr
        assert "not waiting for node3 (running, not answering)" in restart.stderr


@contextmanager
def cli_managed_cluster(data_dir: Path, n: int) -> Iterator[Cluster]:
    """A running cluster whose nodes the CLI may restart: a node restarted by `ehrnet cluster restart` is not a child
    of this test (its parent, the CLI, has exited), so it is stopped through cluster.json, and checked gone."""
    with running_cluster(data_dir, n=n) as cluster:
        try:
            yield cluster
        finally:
            _fresh(cluster).down(timeout=5)
    left = [p for p in psutil.process_iter(["cmdline"]) if str(data_dir) in " ".join(p.info["cmdline"] or [])]
    for proc in left:
        proc.kill()
    assert not left, f"node processes left running: {[p.pid for p in left]}"


def _fresh(cluster: Cluster) -> Cluster:
    """The cluster as the CLI left it (node2 has a new pid, recorded in cluster.json)."""
    return Cluster(cluster.network, cluster.data_dir)
