"""A real 4-node cluster: meshing, gossip between processes, crash and restart, clean shutdown."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from node.client import NodeRefused
from node.cluster.local import Cluster, is_node_process
from tests.harness import http_json, node_processes, operator_token, running_cluster, wait_until

pytestmark = pytest.mark.cluster


def probe_received(cluster: Cluster, name: str, since_ns: int = 0) -> list[dict[str, int | str]]:
    url = f"{cluster.records[name].http_url}/probe/received?since_ns={since_ns}"
    records: list[dict[str, int | str]] = http_json("GET", url, token=operator_token(cluster, name))["records"]
    return records


def publish(cluster: Cluster, name: str, count: int = 1, rate: float = 100.0) -> dict[str, float]:
    url = f"{cluster.records[name].http_url}/probe/publish"
    result: dict[str, float] = http_json(
        "POST", url, {"count": count, "rate": rate}, token=operator_token(cluster, name)
    )
    return result


def test_four_nodes_mesh_and_gossip_reaches_every_other_node(tmp_path: Path) -> None:
    with running_cluster(tmp_path) as cluster:
        names = list(cluster.records)
        peer_ids = {n: cluster.records[n].peer_id for n in names}
        for name in names:
            status = cluster.status_of(name)
            assert status is not None
            assert set(status["peers"]) == {peer_ids[o] for o in names if o != name}
            assert status["peer_id"] == peer_ids[name]
        # Gossipsub builds its mesh on heartbeats: retry the first round until everyone hears everyone.
        for name in names:
            publish(cluster, name, count=3, rate=50)

        def everyone_heard_everyone() -> bool:
            for receiver in names:
                origins = {r["origin"] for r in probe_received(cluster, receiver)}
                if origins != {peer_ids[o] for o in names if o != receiver}:
                    for name in names:
                        publish(cluster, name, count=1)
                    return False
            return True

        wait_until(everyone_heard_everyone, timeout=15, interval=0.5, what="gossip from every node at every node")
        # Once meshed, a fresh batch from each node arrives complete and in order at every other node.
        since = time.time_ns()
        sent = {name: publish(cluster, name, count=20, rate=200) for name in names}

        missing: dict[str, list[int]] = {}

        def batch_complete() -> bool:
            missing.clear()
            for receiver in names:
                records = probe_received(cluster, receiver, since)
                for origin in names:
                    if origin == receiver:
                        continue
                    seqs = {int(r["seq"]) for r in records if r["origin"] == peer_ids[origin]}
                    expected = set(range(int(sent[origin]["first_seq"]), int(sent[origin]["last_seq"]) + 1))
                    if not expected <= seqs:
                        missing[f"{origin}->{receiver}"] = sorted(expected - seqs)
            return not missing

        try:
            wait_until(batch_complete, timeout=10, what="20 probe messages from each node at each other node")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; missing: {missing}") from exc


def test_sigkilled_node_restarts_with_same_peer_id_and_is_heard_within_2s(tmp_path: Path) -> None:
    with running_cluster(tmp_path) as cluster:
        victim = "node2"
        peer_id = cluster.records[victim].peer_id
        cluster.kill(victim)
        assert not cluster.alive(victim)
        wait_until(
            lambda: all(
                peer_id not in (cluster.status_of(n) or {"peers": [peer_id]})["peers"]
                for n in cluster.records
                if n != victim
            ),
            timeout=10,
            what="the others notice node2 is gone",
        )
        cluster.spawn(victim)
        cluster.wait_connected(timeout=15)
        status = cluster.status_of(victim)
        assert status is not None and status["peer_id"] == peer_id
        # Give gossipsub its mesh back (heartbeat), then measure: a message published now must arrive within 2 s.
        # With the library's seconds-based seqno seed it would be dropped as a duplicate for 5–8 s.
        others = [n for n in cluster.records if n != victim]
        wait_until(
            lambda: (
                publish(cluster, victim)
                and all(any(r["origin"] == peer_id for r in probe_received(cluster, n)) for n in others)
            ),
            timeout=10,
            interval=0.3,
            what="the restarted node's messages reach the others",
        )
        since = time.time_ns()
        published = publish(cluster, victim)
        start = time.monotonic()
        wait_until(
            lambda: all(
                any(
                    r["origin"] == peer_id and r["seq"] == published["last_seq"]
                    for r in probe_received(cluster, n, since)
                )
                for n in others
            ),
            timeout=2.0,
            interval=0.02,
            what="a fresh message from the restarted node at every other node",
        )
        assert time.monotonic() - start < 2.0


def test_sigterm_exits_zero_without_traceback(tmp_path: Path) -> None:
    with running_cluster(tmp_path, n=2) as cluster:
        for name in list(cluster.records):
            assert cluster.stop(name) == 0
            log = Path(cluster.records[name].log).read_text()
            assert "stopped cleanly" in log
            assert "Traceback" not in log


def test_cli_cluster_up_status_down(tmp_path: Path) -> None:
    data = tmp_path / "cli"
    cli = [sys.executable, "-m", "node.cli"]
    started = time.monotonic()
    try:
        up = subprocess.run(
            [*cli, "cluster", "up", "-n", "4", "--detach", "--data-dir", str(data)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        took = time.monotonic() - started
        assert up.returncode == 0, up.stderr
        assert took < 15, f"cluster up took {took:.1f} s"
        status = subprocess.run(
            [*cli, "cluster", "status", "--json", "--data-dir", str(data)], capture_output=True, text=True, timeout=30
        )
        assert status.returncode == 0, status.stderr
        doc = json.loads(status.stdout)
        assert len(doc["nodes"]) == 4
        for node in doc["nodes"]:
            assert node["alive"] and node["peers"] == 3
            assert http_json("GET", node["http_url"] + "/status")["name"] == node["name"]
    finally:
        down = subprocess.run(
            [*cli, "cluster", "down", "--data-dir", str(data)], capture_output=True, text=True, timeout=30
        )
    assert down.returncode == 0, down.stderr
    assert not node_processes()
    # The nodes were children of the exited `cluster up`; whatever reaps orphans here, none may still run.
    for node in doc["nodes"]:
        assert not is_node_process(node["pid"])


def test_operator_endpoints_refuse_without_token(tmp_path: Path) -> None:
    with running_cluster(tmp_path, n=1) as cluster:
        url = cluster.records["node1"].http_url
        with pytest.raises(NodeRefused) as missing:
            http_json("POST", url + "/admin/shutdown", {})
        assert missing.value.status == 401
        assert "operator token" in missing.value.message
        with pytest.raises(NodeRefused) as wrong:
            http_json("POST", url + "/admin/shutdown", {}, token="0" * 64)
        assert wrong.value.status == 403
        assert cluster.alive("node1")
        http_json("POST", url + "/admin/shutdown", {}, token=operator_token(cluster, "node1"))
        assert cluster.wait_exit("node1", 10) == 0


def test_a_client_that_never_finishes_its_body_does_not_hold_up_shutdown(tmp_path: Path) -> None:
    # aiohttp keeps reading an unread request body for 10 s by default before it lets a stopping server go;
    # this client announces 1,000 bytes, sends 2 and waits, which held the node's exit up for that long.
    with running_cluster(tmp_path, n=1) as cluster:
        record = cluster.records["node1"]
        host, port = record.http_url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as stalled:
            stalled.sendall(b"POST /admin/shutdown HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{}")
            assert stalled.recv(100).startswith(b"HTTP/1.1 401")
            began = time.monotonic()
            http_json("POST", record.http_url + "/admin/shutdown", {}, token=operator_token(cluster, "node1"))
            assert cluster.wait_exit("node1", 10) == 0
            assert time.monotonic() - began < 5


def test_ctrl_c_equivalent_stops_foreground_cluster(tmp_path: Path) -> None:
    data = tmp_path / "fg"
    proc = subprocess.Popen(
        [sys.executable, "-m", "node.cli", "cluster", "up", "-n", "2", "--data-dir", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        stdout = proc.stdout
        assert stdout is not None
        wait_until(lambda: "Ctrl-C stops the cluster" in stdout.readline(), timeout=30, interval=0)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not node_processes()
