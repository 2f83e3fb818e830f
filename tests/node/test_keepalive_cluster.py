"""A paused node process keeps its sockets open and sends no FIN: its peers must notice it through the keepalive
within the documented bound, and reconnect to it once it runs again."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from node.config import generate_network
from node.keepalive import KeepaliveSettings
from node.peering import PeeringService
from tests.harness import running_cluster, wait_until

pytestmark = pytest.mark.cluster

# Polling /status every 0.1 s, on a shared 2-core machine: the slack on top of the keepalive's own bound.
SLACK_S = 2.0


def test_a_paused_node_is_noticed_within_the_keepalive_bound_and_reconnected_after_it_resumes(tmp_path: Path) -> None:
    with running_cluster(tmp_path, generate_network(2), n=2) as cluster:
        watcher, paused = "node1", "node2"
        paused_id = cluster.records[paused].peer_id
        pid = cluster.records[paused].pid
        assert pid is not None

        def peers_of_watcher() -> set[str]:
            status = cluster.status_of(watcher)
            return set(status["peers"]) if status else set()

        wait_until(lambda: paused_id in peers_of_watcher(), timeout=15, what="node1 connected to node2")
        os.kill(pid, signal.SIGSTOP)
        stopped_at = time.monotonic()
        try:
            wait_until(
                lambda: paused_id not in peers_of_watcher(), timeout=30, interval=0.1, what="the pause is noticed"
            )
            noticed_s = time.monotonic() - stopped_at
        finally:
            os.kill(pid, signal.SIGCONT)
        resumed_at = time.monotonic()
        wait_until(lambda: paused_id in peers_of_watcher(), timeout=30, interval=0.1, what="reconnected")
        reconnected_s = time.monotonic() - resumed_at
        print(f"paused node noticed after {noticed_s:.2f} s; reconnected {reconnected_s:.2f} s after it resumed")
        assert noticed_s <= KeepaliveSettings().detection_bound_s + SLACK_S
        # After the resume: a dial in flight completes, or the next one comes within the redial cap.
        assert reconnected_s <= PeeringService.max_backoff_s * (1 + PeeringService.jitter) + 5.0 + SLACK_S
