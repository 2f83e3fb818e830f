"""The p2p service ends (and so stops the node with its reason) when the libp2p side ends by itself; its redial
loop does not make two peers that lost each other dial each other at the same moment."""

from __future__ import annotations

import asyncio
import os
import time
from typing import cast

import pytest

from node.p2p.bridge import HostConfig, P2PError, P2PHost
from node.p2p.peering import BootstrapPeer, PeeringService
from tests.harness import await_until


async def test_a_host_that_ends_by_itself_ends_the_service_with_its_reason() -> None:
    service = PeeringService(HostConfig(seed=os.urandom(32)), [])
    await service.start()
    try:
        running = asyncio.create_task(service.run())
        await asyncio.sleep(0)
        assert not running.done()
        # End the trio side the way a library failure would: without `stop()` being asked.
        host = service.host
        assert host._token is not None and host._stop_event is not None
        host._token.run_sync_soon(host._stop_event.set)
        with pytest.raises(P2PError, match="stopped by itself"):
            await asyncio.wait_for(running, timeout=10)
        assert not host.running
    finally:
        await service.stop()


async def test_a_stopping_node_cancels_the_service_quietly() -> None:
    service = PeeringService(HostConfig(seed=os.urandom(32)), [])
    await service.start()
    running = asyncio.create_task(service.run())
    await asyncio.sleep(0)
    running.cancel()  # what the node's task group does on stop, before `stop()`
    with pytest.raises(asyncio.CancelledError):
        await running
    await service.stop()
    assert not service.host.running


class FakeDialHost:
    """Connected peers set by the test; each dial is recorded (and connects) as it is made."""

    def __init__(self, peer_id: str) -> None:
        self.peer_id = peer_id
        self.connected: set[str] = set()
        self.blocked_peers: frozenset[str] = frozenset()
        self.dials: list[str] = []

    def connected_peers(self) -> list[str]:
        return sorted(self.connected)

    async def dial(self, multiaddr: str) -> None:
        self.dials.append(multiaddr)
        self.connected.add(multiaddr)


async def test_of_two_peers_that_lost_each_other_only_the_smaller_peer_id_redials_at_once() -> None:
    """Both ends of a closed connection notice it at once; had both redialled at once, their crossing dials left
    one end holding a connection the other had closed as surplus (no stream opened on it until the keepalive
    closed it). The larger peer ID waits `yield_s` — and does not dial at all if the connection arrives meanwhile."""
    bootstrap = [BootstrapPeer("low", "A-low", "A-low"), BootstrapPeer("high", "Z-high", "Z-high")]
    service = PeeringService(HostConfig(seed=os.urandom(32)), bootstrap)
    host = FakeDialHost("M-me")
    service.host = cast(P2PHost, host)
    service.tick_s, service.yield_s = 0.01, 0.5
    host.connected = {"A-low", "Z-high"}
    redial = asyncio.create_task(service._redial())
    try:
        await asyncio.sleep(0.05)
        assert host.dials == []  # both connected
        lost_at = time.monotonic()
        host.connected.clear()  # both connections closed
        await await_until(lambda: "Z-high" in host.dials, timeout_s=5, interval=0.005)
        assert time.monotonic() - lost_at < service.yield_s  # we have the smaller ID: at once
        assert "A-low" not in host.dials  # A-low has the smaller ID: it dials us; we wait
        await await_until(lambda: "A-low" in host.dials, timeout_s=5, interval=0.005)
        assert time.monotonic() - lost_at >= service.yield_s  # nobody came: dialled after the wait
        await asyncio.sleep(0.05)  # the loop sees it connected
        host.connected.discard("A-low")  # lost again, and this time A-low's dial arrives within the wait
        await asyncio.sleep(0.05)
        host.connected.add("A-low")
        await asyncio.sleep(2 * service.yield_s)
        assert host.dials.count("A-low") == 1
    finally:
        redial.cancel()
        await asyncio.gather(redial, return_exceptions=True)
