"""A paused node process keeps its sockets open and sends no FIN: its peers must notice it through the keepalive
within the documented bound, and reconnect to it once it runs again. And the other way round: a client that was
too busy to answer pings, and was disconnected for it, gets a new connection when it next opens a stream."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from node.cluster.config import generate_network
from node.cluster.peer_process import PeerProcess, loopback_pair
from node.p2p.bridge import HostConfig, P2PHost
from node.p2p.keepalive import PING_BYTES, PING_PROTOCOL, KeepaliveSettings
from node.p2p.peering import PeeringService
from tests.harness import await_until, running_cluster, wait_until

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


async def test_a_client_whose_loop_was_blocked_reopens_its_closed_connection_on_the_next_request() -> None:
    # A client busy on its event loop (a device computing a result) cannot answer pings: the node's keepalive
    # rightly closes the connection, but the client's host still lists it until the loop runs again, and its
    # next stream was opened on the dead connection ("Failed to send SYN: broken pipe") instead of redialling.
    server, nowhere = loopback_pair()
    peer = PeerProcess(server, nowhere)  # its own redial goes nowhere: only the client can reconnect
    client = P2PHost(HostConfig(seed=os.urandom(32)))
    await client.start()
    try:
        await await_until(lambda: any("ready" in r for r in peer.reports), timeout_s=60, what="peer process up")
        await client.dial(server.multiaddr)
        await await_until(lambda: peer.peers() == [client.peer_id], timeout_s=10, what="peer sees the client")
        # Deliberately block the loop, as CPU-bound work on it would: no pings are answered meanwhile.
        time.sleep(KeepaliveSettings().detection_bound_s + SLACK_S)  # noqa: ASYNC251
        assert peer.peers() == [], "the peer's keepalive closed the silent client's connection"
        stream = await client.open_stream(server.peer_id, PING_PROTOCOL)
        await stream.write(b"x" * PING_BYTES)
        assert await stream.read_exactly(PING_BYTES) == b"x" * PING_BYTES
        await stream.close()
    finally:
        await client.stop()
        peer.stop()


async def test_closing_a_connection_to_a_paused_peer_with_a_full_socket_is_bounded() -> None:
    # Closing writes a GoAway frame; to a peer that stopped reading, behind a write already blocked on a full
    # socket buffer, that write never completes: without a bound the keepalive's close would hang for good.
    server, nowhere = loopback_pair()
    peer = PeerProcess(server, nowhere, keepalive_interval_s=3600)
    host = P2PHost(HostConfig(seed=os.urandom(32)))
    await host.start()
    flood: asyncio.Task[None] | None = None
    try:
        await await_until(lambda: any("ready" in r for r in peer.reports), timeout_s=60, what="peer process up")
        await host.dial(server.multiaddr)
        stream = await host.open_stream(server.peer_id, PING_PROTOCOL)
        os.kill(peer.pid, signal.SIGSTOP)
        written = [0]

        async def fill() -> None:
            while True:
                await stream.write(bytes(65536))
                written[0] += 65536

        flood = asyncio.create_task(fill())
        # Writes stop completing once the kernel's buffers on both sides are full.
        await await_until(lambda: written[0] >= 65536, timeout_s=10, what="writes start")
        last = [-1]

        def stalled() -> bool:
            stuck, last[0] = written[0] == last[0], written[0]
            return stuck

        await await_until(stalled, timeout_s=30, interval=0.5, what="the socket buffer fills")
        started = time.monotonic()
        assert await asyncio.wait_for(host.disconnect(server.peer_id), timeout=10) is True
        assert time.monotonic() - started < 3.0
        assert server.peer_id not in host.connected_peers()
    finally:
        if flood is not None:
            flood.cancel()
            await asyncio.gather(flood, return_exceptions=True)
        peer.stop()  # resumes the paused process first
        await host.stop()
