"""Local clusters: spawn one node process per configured node, watch them, stop them.

The cluster file `<data-dir>/cluster.json` records each node's name, pid, HTTP URL, multiaddr and data dir, so
`ehrnet cluster status|down|kill|restart|logs` find a detached cluster from its data dir alone. Every node is a
real process with its own state directory, so killing and restarting one is exactly what happens in production.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from node.client import NodeClient, NodeError
from node.cluster.config import NetworkConfig, NodeSpec
from node.cluster.errors import ClusterError
from node.cluster.network_init import RESOLVED_NAME

if TYPE_CHECKING:
    from node.cluster.netns import NamespaceNetwork

CLUSTER_FILE = "cluster.json"


@dataclass
class NodeRecord:
    name: str
    pid: int | None
    http_url: str
    multiaddr: str
    peer_id: str
    data_dir: str
    log: str
    netns: str | None = None  # the network namespace the node runs in (node/cluster/netns.py), if any


def default_data_dir() -> Path:
    env = os.environ.get("EHRNET_DATA_DIR")
    return Path(env) if env else Path.home() / ".ehrnet" / "cluster"


def is_node_process(pid: int | None) -> bool:
    """True if `pid` is a live (not zombie) ehrnet node process."""
    if pid is None:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return "node.cli" in " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


class Cluster:
    """A set of node processes described by a resolved network config in `data_dir`."""

    def __init__(self, network: NetworkConfig, data_dir: Path, netns: NamespaceNetwork | None = None) -> None:
        self.network = network
        self.data_dir = data_dir
        self.netns = netns  # when set, each node runs in its own namespace of it (node/cluster/netns_cluster.py)
        self.records: dict[str, NodeRecord] = {}
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._load_records()

    @property
    def config_path(self) -> Path:
        return self.data_dir / RESOLVED_NAME

    @property
    def cluster_file(self) -> Path:
        return self.data_dir / CLUSTER_FILE

    def _load_records(self) -> None:
        if self.cluster_file.exists():
            doc = json.loads(self.cluster_file.read_text())
            for entry in doc.get("nodes", []):
                self.records[entry["name"]] = NodeRecord(**entry)
        for spec in self.network.nodes:
            if spec.name not in self.records:
                self.records[spec.name] = self._record_for(spec, None)

    def _record_for(self, spec: NodeSpec, pid: int | None) -> NodeRecord:
        node_dir = self.data_dir / spec.name
        return NodeRecord(
            name=spec.name,
            pid=pid,
            http_url=spec.http_url,
            multiaddr=spec.p2p_multiaddr,
            peer_id=spec.peer_id or "",
            data_dir=str(node_dir),
            log=str(node_dir / "node.log"),
        )

    def save(self) -> None:
        doc = {
            "network": self.network.name,
            "config": str(self.config_path),
            "nodes": [asdict(r) for r in self.records.values()],
        }
        tmp = self.cluster_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
        tmp.replace(self.cluster_file)

    # ---- process control -------------------------------------------------------------------------------

    def spawn(self, name: str, extra_env: dict[str, str] | None = None) -> None:
        spec = self.network.node(name)
        record = self._record_for(spec, None)
        previous = self.records.get(name)
        record.netns = self.netns.namespace_of(name) if self.netns else previous.netns if previous else None
        Path(record.data_dir).mkdir(parents=True, exist_ok=True)
        log_file = open(record.log, "ab")  # noqa: SIM115 - handed to the child, closed below
        cmd = [
            sys.executable,
            "-m",
            "node.cli",
            "node",
            "run",
            "--config",
            str(self.config_path),
            "--name",
            name,
            "--data-dir",
            str(self.data_dir),
        ]
        if record.netns:
            cmd = ["ip", "netns", "exec", record.netns, *cmd]  # exec'd in place: the pid stays the node's
        env = {**os.environ, **(extra_env or {}), "PYTHONUNBUFFERED": "1"}
        try:
            proc = subprocess.Popen(
                cmd,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        finally:
            log_file.close()
        self._procs[name] = proc
        record.pid = proc.pid
        self.records[name] = record
        self.save()

    def alive(self, name: str) -> bool:
        proc = self._procs.get(name)
        if proc is not None:
            # Our own child: its exit status is the truth. Reading /proc for a process that has just been
            # spawned can miss its command line under load, and taking that for "not running" made start-up
            # report a live node as exited and then leave it running.
            return proc.poll() is None
        return is_node_process(self.records[name].pid)

    def signal(self, name: str, sig: signal.Signals) -> None:
        pid = self.records[name].pid
        if pid is not None and self.alive(name):
            os.kill(pid, sig)

    def wait_exit(self, name: str, timeout: float) -> int | None:
        """Wait for a node process to exit; its exit code if it was our child, else None."""
        proc = self._procs.get(name)
        deadline = time.monotonic() + timeout
        if proc is not None:
            try:
                return proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return None
        while time.monotonic() < deadline:
            if not self.alive(name):
                return None
            time.sleep(0.05)
        return None

    def kill(self, name: str) -> None:
        """SIGKILL, as a crash would: no shutdown code runs."""
        self.signal(name, signal.SIGKILL)
        self.wait_exit(name, 5)
        self.records[name].pid = None
        self.save()

    def stop(self, name: str, timeout: float = 10.0) -> int | None:
        """SIGTERM and wait; SIGKILL if the node does not stop within `timeout`."""
        code: int | None = None
        if self.alive(name):
            self.signal(name, signal.SIGTERM)
            code = self.wait_exit(name, timeout)
            if self.alive(name):
                self.signal(name, signal.SIGKILL)
                self.wait_exit(name, 5)
        self.records[name].pid = None
        self.save()
        return code

    def down(self, timeout: float = 10.0) -> None:
        names = [n for n in self.records if self.alive(n)]
        for name in names:
            self.signal(name, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name in names:
            self.wait_exit(name, max(0.1, deadline - time.monotonic()))
            if self.alive(name):
                self.signal(name, signal.SIGKILL)
                self.wait_exit(name, 5)
            self.records[name].pid = None
        self.save()

    # ---- faults: pause, resume, wipe ----------------------------------------------------------------------
    # A paused node (SIGSTOP) keeps its sockets open and answers nothing, as a node stuck in a long GC or on a
    # frozen VM would: peers see a silent connection, not a closed one.

    def pause(self, name: str) -> None:
        if not self.alive(name):
            raise ClusterError(f"{name} is not running; nothing to pause")
        self.signal(name, signal.SIGSTOP)
        deadline = time.monotonic() + 5  # the stop is delivered asynchronously: return once it has taken effect
        while not self.paused(name) and self.alive(name) and time.monotonic() < deadline:
            time.sleep(0.01)

    def resume(self, name: str) -> None:
        self.signal(name, signal.SIGCONT)

    def paused(self, name: str) -> bool:
        pid = self.records[name].pid
        if pid is None or not self.alive(name):
            return False
        try:
            return bool(psutil.Process(pid).status() == psutil.STATUS_STOPPED)
        except psutil.NoSuchProcess:
            return False

    def wipe(self, name: str) -> None:
        """Kill a node and delete its chain, blockstore and every other state, keeping only its identity (key and
        operator token) and its log: started again, it must rebuild everything from its peers."""
        pid = self.records[name].pid
        self.signal(name, signal.SIGCONT)
        self.kill(name)
        # A dying process loses its command line before it is gone, so `kill` can return while it still holds
        # its files: delete nothing until it is a zombie or reaped.
        deadline = time.monotonic() + 10
        while pid is not None and time.monotonic() < deadline:
            try:
                if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.05)
        root = Path(self.records[name].data_dir)
        keep = {"node.key", "api.token", "node.log"}
        for entry in root.iterdir() if root.exists() else []:
            if entry.name in keep:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    # ---- observation ------------------------------------------------------------------------------------

    def client(self, name: str, timeout_s: float = 10.0) -> NodeClient:
        """The HTTP API client of node `name`, with its operator token when its data directory holds one."""
        token_file = Path(self.records[name].data_dir) / "api.token"
        try:
            token: str | None = token_file.read_text().strip()
        except OSError:
            token = None
        return NodeClient.connect(self.records[name].http_url, token, timeout_s)

    def status_of(self, name: str, timeout: float = 1.0) -> dict[str, Any] | None:
        """The node's `/status`, or None when it does not answer (down, starting, too slow)."""
        try:
            return NodeClient.connect(self.records[name].http_url, timeout_s=timeout).status()
        except NodeError:
            return None

    def expected_peers(self, name: str) -> set[str]:
        return {p.peer_id or "" for p in self.network.bootstrap_of(name)}

    def wait_connected(
        self,
        names: list[str] | None = None,
        timeout: float = 15.0,
        progress: Callable[[str], None] | None = None,
        *,
        skip_silent_peers: bool = False,
    ) -> None:
        """Wait until each named node answers /status and is connected to all its running bootstrap peers;
        `progress` gets a line whenever that changes, and a timeout names the slow node with the end of its log
        (node/cluster/wait.py). With `skip_silent_peers`, a running peer that does not answer is not waited for."""
        from node.cluster.wait import wait_meshed

        wait_meshed(self, list(names or self.records), timeout, progress, skip_silent_peers=skip_silent_peers)

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = Path(self.records[name].log)
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def table(self) -> list[dict[str, Any]]:
        rows = []
        for name, record in self.records.items():
            status = self.status_of(name) if self.alive(name) else None
            rows.append(
                {
                    **asdict(record),
                    "alive": self.alive(name),
                    "peers": len(status["peers"]) if status else None,
                    "connected_to": status["peers"] if status else [],
                }
            )
        return rows
