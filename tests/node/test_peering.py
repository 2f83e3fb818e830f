"""The p2p service ends (and so stops the node with its reason) when the libp2p side ends by itself."""

from __future__ import annotations

import asyncio
import os

import pytest

from node.p2p import HostConfig, P2PError
from node.peering import PeeringService


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
