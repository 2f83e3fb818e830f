"""Waiting for node processes to come up: which answer, which are meshed, and what to say when one is slow.

A node's start-up is dominated by imports (py-libp2p alone loads ~1,250 modules), so on a loaded machine it can
take many times its quiet-machine figure. Waiting silently for a fixed time and then failing with a list of names
left the operator guessing; the waiter here reports progress whenever the picture changes (and every few seconds
while it does not), and on timeout names the slow node, says what it still lacks and shows the end of its log.

"Up" means the node answers `GET /status`; "meshed" means it is also connected to every configured bootstrap
peer that is running. A restarted node need not wait for a peer that runs but does not answer (paused, or hung):
with `skip_silent_peers` such a peer is reported and not waited for.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from node.cluster.config import NetworkConfig
from node.cluster.errors import ClusterError

Progress = Callable[[str], None]


class _Record(Protocol):
    @property
    def pid(self) -> int | None: ...

    @property
    def log(self) -> str: ...


class Cluster(Protocol):
    """What the waiter reads of a cluster (node/cluster/local.py: Cluster, whose `wait_connected` calls it)."""

    @property
    def records(self) -> Mapping[str, _Record]: ...

    @property
    def network(self) -> NetworkConfig: ...

    def alive(self, name: str) -> bool: ...

    def status_of(self, name: str, timeout: float = 1.0) -> dict[str, Any] | None: ...

    def log_tail(self, name: str, lines: int = 20) -> str: ...


REPORT_EVERY_S = 5.0  # a progress line at least this often while nothing changes, so a wait never looks hung
LOG_TAIL_LINES = 15
STATUS_TIMEOUT_S = 3.0  # a loaded node can take over a second to answer; that is slow, not down


class ClusterTimeout(ClusterError):
    """Nodes did not come up or mesh in time; `slow` names them, worst first."""

    exit_code = 1

    def __init__(self, message: str, slow: list[str]) -> None:
        super().__init__(message)
        self.slow = slow


@dataclass
class NodeProgress:
    name: str
    answered_s: float | None = None  # seconds into the wait when it first answered /status
    meshed_s: float | None = None
    lacking: list[str] = field(default_factory=list)  # running peers it is not yet connected to

    def waiting_for(self) -> str:
        if self.answered_s is None:
            return "no answer on its HTTP API yet"
        return f"not yet connected to {', '.join(self.lacking)}"


def summary(progress: dict[str, NodeProgress], elapsed_s: float, silent: set[str] | None = None) -> str:
    """One line: how many nodes answer and are meshed, which do not answer yet, and whom the others still miss."""
    total = len(progress)
    answering = sum(p.answered_s is not None for p in progress.values())
    meshed = sum(p.meshed_s is not None for p in progress.values())
    line = f"{elapsed_s:5.1f} s: up {answering}/{total}, meshed {meshed}/{total}"
    starting = [p.name for p in progress.values() if p.answered_s is None]
    if starting:
        line += f"; no answer yet: {' '.join(starting)}"
    connecting = [p for p in progress.values() if p.answered_s is not None and p.meshed_s is None]
    if connecting:
        line += "; connecting: " + ", ".join(f"{p.name} (to {' '.join(p.lacking)})" for p in connecting)
    if silent:
        line += f"; not waiting for {' '.join(sorted(silent))} (running, not answering)"
    return line


def slowest(progress: dict[str, NodeProgress]) -> list[str]:
    """Pending nodes, those that never answered first: they are the ones whose logs explain the wait."""
    pending = [p for p in progress.values() if p.meshed_s is None]
    return [p.name for p in sorted(pending, key=lambda p: (p.answered_s is not None, p.name))]


def wait_meshed(
    cluster: Cluster,
    names: list[str],
    timeout_s: float,
    progress: Progress | None = None,
    *,
    skip_silent_peers: bool = False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, NodeProgress]:
    """Wait until every node of `names` answers and is connected to its running bootstrap peers.

    Raises ClusterError at once if one exits, ClusterTimeout after `timeout_s` naming the slow nodes with the tail
    of their logs. `progress` receives a summary line whenever it changes and every REPORT_EVERY_S seconds."""
    began = clock()
    state = {name: NodeProgress(name) for name in names}
    last_line, last_report = "", began
    silent: set[str] = set()
    while True:
        now = clock()
        running = {n for n in cluster.records if cluster.alive(n)}
        silent = _silent_peers(cluster, names, running) if skip_silent_peers else set()
        for name, node in state.items():
            if node.meshed_s is not None:
                continue
            if name not in running:
                raise ClusterError(f"node {name} exited during start-up; its log ends:\n{cluster.log_tail(name)}")
            # A slow answer is waited for, but never much past the deadline.
            status = cluster.status_of(name, timeout=min(STATUS_TIMEOUT_S, max(0.5, began + timeout_s - clock())))
            if status is None:
                continue
            if node.answered_s is None:
                node.answered_s = now - began
            connected = set(status.get("peers", []))
            node.lacking = [
                peer.name
                for peer in cluster.network.bootstrap_of(name)
                if peer.name in running and peer.name not in silent and (peer.peer_id or "") not in connected
            ]
            if not node.lacking:
                node.meshed_s = now - began
        elapsed = clock() - began
        line = summary(state, elapsed, silent)
        changed = line.split(": ", 1)[1] != last_line.split(": ", 1)[-1]
        if progress is not None and (changed or clock() - last_report >= REPORT_EVERY_S):
            progress(line)
            last_line, last_report = line, clock()
        if all(node.meshed_s is not None for node in state.values()):
            return state
        if elapsed > timeout_s:
            raise _timeout(cluster, state, timeout_s)
        sleep(0.1)


def _silent_peers(cluster: Cluster, names: list[str], running: set[str]) -> set[str]:
    """Running bootstrap peers of `names` that do not answer /status (paused with SIGSTOP, hung, still starting)."""
    peers = {p.name for name in names for p in cluster.network.bootstrap_of(name)} - set(names)
    return {p for p in peers & running if cluster.status_of(p, timeout=1.0) is None}


def _timeout(cluster: Cluster, state: dict[str, NodeProgress], timeout_s: float) -> ClusterTimeout:
    slow = slowest(state)
    lines = [f"not meshed after {timeout_s:.0f} s:"]
    for name in slow:
        pid = cluster.records[name].pid
        lines.append(f"  {name} (pid {pid}): {state[name].waiting_for()}")
    # The first slow node's log says why (a node still importing has logged nothing yet; one that cannot reach a
    # peer says so); more than one tail buries the answer.
    first = slow[0]
    lines.append(f"last {LOG_TAIL_LINES} lines of {first}'s log ({cluster.records[first].log}):")
    lines.append(cluster.log_tail(first, LOG_TAIL_LINES) or "(empty: the node has not logged anything yet)")
    return ClusterTimeout("\n".join(lines), slow)
