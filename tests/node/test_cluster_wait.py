"""The start-up waiter (node/cluster/wait.py) on a fake cluster with a fake clock: progress lines as nodes answer
and mesh, a timeout that names the slow node with its log tail, silent peers a restart does not wait for."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from node.cluster.errors import ClusterError
from node.cluster.local import Cluster
from node.cluster.wait import ClusterTimeout, wait_meshed


@dataclass
class Spec:
    name: str
    peer_id: str


@dataclass
class Record:
    pid: int
    log: str


@dataclass
class FakeNetwork:
    names: list[str]

    def bootstrap_of(self, name: str) -> list[Spec]:
        return [Spec(n, f"id-{n}") for n in self.names if n != name]


@dataclass
class FakeCluster:
    """Each node answers from `answers_at` on (None: never) and is connected to every peer from `meshes_at` on."""

    names: list[str]
    answers_at: dict[str, float | None]
    meshes_at: dict[str, float]
    exits_at: dict[str, float] = field(default_factory=dict)
    now: float = 0.0

    def __post_init__(self) -> None:
        self.network = FakeNetwork(self.names)
        self.records = {n: Record(pid=100 + i, log=f"/logs/{n}.log") for i, n in enumerate(self.names)}

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def alive(self, name: str) -> bool:
        return self.now < self.exits_at.get(name, float("inf"))

    def status_of(self, name: str, timeout: float = 1.0) -> dict[str, Any] | None:
        answers_at = self.answers_at[name]
        if answers_at is None or self.now < answers_at:
            return None
        if self.now < self.meshes_at.get(name, 0.0):
            return {"peers": []}
        # A node is connected to the peers whose hosts are up (a paused or still-importing peer has none).
        return {"peers": [f"id-{n}" for n in self.names if n != name and self.alive(n) and self._answers(n)]}

    def _answers(self, name: str) -> bool:
        answers_at = self.answers_at[name]
        return answers_at is not None and self.now >= answers_at

    def log_tail(self, name: str, lines: int = 20) -> str:
        return f"{name}: importing libp2p ..."


def wait(fake: FakeCluster, names: list[str], timeout: float, **kwargs: Any) -> list[str]:
    lines: list[str] = []
    wait_meshed(cast(Cluster, fake), names, timeout, lines.append, clock=fake.clock, sleep=fake.sleep, **kwargs)
    return lines


def test_progress_follows_nodes_answering_then_meshing() -> None:
    fake = FakeCluster(["node1", "node2"], answers_at={"node1": 0.5, "node2": 2.0}, meshes_at={"node1": 2.5})
    lines = wait(fake, ["node1", "node2"], timeout=10)
    assert "up 0/2, meshed 0/2; no answer yet: node1 node2" in lines[0]
    assert any("up 1/2, meshed 0/2; no answer yet: node2; connecting: node1 (to node2)" in line for line in lines)
    assert lines[-1].endswith("up 2/2, meshed 2/2")
    # One line per change, not one per poll (the loop polls every 0.1 s for 2.5 s).
    assert len(lines) <= 5


def test_a_long_wait_reports_even_without_change() -> None:
    fake = FakeCluster(["node1"], answers_at={"node1": 12.0}, meshes_at={})
    lines = wait(fake, ["node1"], timeout=30)
    assert len([line for line in lines if "no answer yet: node1" in line]) >= 3  # at 0, ~5 and ~10 s


def test_timeout_names_the_slow_node_and_shows_its_log() -> None:
    fake = FakeCluster(["node1", "node2", "node3"], answers_at={"node1": 0, "node2": None, "node3": 0}, meshes_at={})
    with pytest.raises(ClusterTimeout) as timed_out:
        wait(fake, ["node1", "node2", "node3"], timeout=5)
    message = str(timed_out.value)
    assert timed_out.value.slow[0] == "node2"  # the one that never answered comes first
    assert "node2 (pid 101): no answer on its HTTP API yet" in message
    assert "node1 (pid 100): not yet connected to node2" in message
    assert "last 15 lines of node2's log (/logs/node2.log)" in message
    assert "node2: importing libp2p ..." in message
    assert timed_out.value.exit_code == 1


def test_a_node_that_exits_fails_at_once() -> None:
    fake = FakeCluster(["node1"], answers_at={"node1": None}, meshes_at={}, exits_at={"node1": 1.0})
    with pytest.raises(ClusterError, match="node node1 exited during start-up") as failed:
        wait(fake, ["node1"], timeout=60)
    assert not isinstance(failed.value, ClusterTimeout)
    assert fake.now < 2


def test_a_restart_does_not_wait_for_a_silent_peer() -> None:
    # node3 runs but does not answer (paused): a restarted node2 is done once it is connected to node1.
    def cluster() -> FakeCluster:
        return FakeCluster(["node1", "node2", "node3"], {"node1": 0, "node2": 1.0, "node3": None}, {})

    lines = wait(cluster(), ["node2"], timeout=10, skip_silent_peers=True)
    assert lines[-1].endswith("up 1/1, meshed 1/1; not waiting for node3 (running, not answering)")
    with pytest.raises(ClusterTimeout, match=r"node2 .*: not yet connected to node3"):
        wait(cluster(), ["node2"], timeout=10)
