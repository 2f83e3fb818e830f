"""Ctrl-C in the middle of a fault leaves nothing behind: no paused node, no node process, no namespace."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from node.chaos.cli import EXPERIMENTS_DIR
from tests.harness import wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.cluster]


def _netns_available() -> tuple[bool, str]:
    try:
        from node.cluster.netns import NamespaceNetwork
        from node.cluster.netns_cluster import start_netns_cluster  # noqa: F401 - the runner needs it too
    except ImportError as exc:
        return False, f"node.cluster.netns not importable: {exc}"
    available: tuple[bool, str] = NamespaceNetwork.available()
    return available


def _long_pause_experiment(tmp_path: Path, network: str) -> Path:
    """smoke, with one 120 s pause of node3 as its only fault: the interrupt surely lands mid-fault."""
    doc = json.loads((EXPERIMENTS_DIR / "smoke.json").read_text())
    doc["configuration"]["network"] = network
    for activity in doc["method"]:
        if activity["name"] == "seeded-fault-schedule":
            activity["provider"]["arguments"]["plan"] = {
                "lead_s": 1,
                "tail_s": 1,
                "faults": [{"kind": "pause", "hold_s": 120, "targets": ["node3"]}],
            }
    path = tmp_path / "long-pause.json"
    path.write_text(json.dumps(doc))
    return path


def _namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith("ehrnet-")]


@pytest.mark.parametrize("network", ["loopback", "netns"])
def test_sigint_mid_fault_resumes_stops_and_removes_everything(tmp_path: Path, network: str) -> None:
    if network == "netns":
        available, reason = _netns_available()
        if not available:
            pytest.skip(f"network namespaces unavailable: {reason}")
    before = set(_namespaces())
    out = tmp_path / "out"
    experiment = _long_pause_experiment(tmp_path, network)
    proc = subprocess.Popen(
        [sys.executable, "-m", "node.cli", "chaos", "run", str(experiment), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    cluster_file = out / "cluster" / "cluster.json"

    def paused_node() -> int | None:
        if not cluster_file.exists():
            return None
        for node in json.loads(cluster_file.read_text())["nodes"]:
            try:
                if node["name"] == "node3" and node["pid"] and psutil.Process(node["pid"]).status() == "stopped":
                    return int(node["pid"])
            except psutil.NoSuchProcess:
                return None
        return None

    try:
        paused_pid = wait_until(paused_node, 120, interval=0.2, what="node3 paused by the experiment")
        pids = [n["pid"] for n in json.loads(cluster_file.read_text())["nodes"] if n["pid"]]
        os.kill(proc.pid, signal.SIGINT)
        output, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0, output.decode(errors="replace")[-2000:]
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, f"pid {pid} left"
    assert not psutil.pid_exists(paused_pid) or psutil.Process(paused_pid).status() != "stopped"
    assert set(_namespaces()) <= before, f"namespaces left: {set(_namespaces()) - before}"
    assert (out / "journal.json").exists()
