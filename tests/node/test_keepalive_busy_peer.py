"""A busy honest peer keeps its connection: a peer whose event loop is held for 3 s at a time, again and again (as
executing a block or verifying a batch of signatures holds it), answers every ping late, and the keepalive of a
real node process must count a late answer as an answer (docs/PROTOCOL.md, "Keepalive").

With the former rule (a ping not answered within 2.5 s was a miss, its stream was reset and a new one negotiated;
two misses in a row closed the connection) the busy peer lost its connection within the second stall: on a loaded
machine honest validators closed each other's connections every few seconds."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from node.cluster.peer_process import PeerProcess, loopback_pair
from node.p2p.bridge import HostConfig, P2PHost
from node.p2p.keepalive import KeepaliveSettings
from tests.harness import await_until

pytestmark = pytest.mark.cluster

STALL_S = 3.0  # more than the 2.5 s ping timeout, less than the 5 s of silence that closes a connection
STALLS = 5
RUN_S = 0.02  # the loop runs only briefly between stalls (a node executing block after block)


async def test_a_peer_whose_loop_stalls_3_s_at_a_time_keeps_its_connection() -> None:
    assert KeepaliveSettings().timeout_s < STALL_S < KeepaliveSettings().detection_bound_s - 1.0
    server, nowhere = loopback_pair()
    peer = PeerProcess(server, nowhere)  # pings us every second; its own redial goes nowhere, so a close sticks
    busy = P2PHost(HostConfig(seed=os.urandom(32)))
    await busy.start()
    try:
        await await_until(lambda: any("ready" in r for r in peer.reports), timeout_s=60, what="peer process up")
        await busy.dial(server.multiaddr)
        await await_until(lambda: peer.peers() == [busy.peer_id], timeout_s=10, what="the peer sees us")
        for _ in range(STALLS):
            time.sleep(STALL_S)  # noqa: ASYNC251 - the stall under test: this host's loop answers nothing meanwhile
            await asyncio.sleep(RUN_S)  # late answers go out, the next ping comes in
        assert peer.peers() == [busy.peer_id], "the peer's keepalive closed the busy peer's connection"
        changes = [r["peers"] for r in peer.reports if "peers" in r]
        assert changes == [[], [busy.peer_id]], f"the connection was closed (and made again): {changes}"
        assert busy.connected_peers() == [server.peer_id]
    finally:
        await busy.stop()
        peer.stop()


async def test_a_node_whose_own_loop_stalls_3_s_at_a_time_keeps_its_connections() -> None:
    # The pinging side is the busy one: the answers are there in time, but its loop reads them only after each
    # stall. Its keepalive must not count its own stall as the peer's silence.
    server, nowhere = loopback_pair()
    peer = PeerProcess(server, nowhere, stalls=(STALL_S, RUN_S))
    quiet = P2PHost(HostConfig(seed=os.urandom(32)))
    await quiet.start()
    try:
        await await_until(lambda: any("ready" in r for r in peer.reports), timeout_s=60, what="peer process up")
        await quiet.dial(server.multiaddr)

        def stalls_done() -> int:
            return max((int(str(r["stalls"])) for r in list(peer.reports) if "stalls" in r), default=0)

        await await_until(lambda: stalls_done() >= STALLS, timeout_s=STALLS * (STALL_S + 2) + 30, what="stalls")
        changes = [r["peers"] for r in peer.reports if "peers" in r]
        assert changes == [[], [quiet.peer_id]], f"the busy node closed the connection (and made it again): {changes}"
        assert quiet.connected_peers() == [server.peer_id]
    finally:
        await quiet.stop()
        peer.stop()
