"""`P2PHost.publish_to`: one gossip message written to chosen peers only (the byzantine equivocate mode's
delivery), on three real hosts in one process: A connected to B and to C, B and C not to each other."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest

from node.p2p.bridge import HostConfig, P2PHost, Subscription, peer_id_from_seed
from tests.harness import await_until

TOPIC = "/t/direct"


@pytest.fixture
async def star() -> AsyncIterator[tuple[P2PHost, P2PHost, P2PHost]]:
    hosts = [P2PHost(HostConfig(seed=os.urandom(32))) for _ in range(3)]
    for host in hosts:
        await host.start()
    a, b, c = hosts
    try:
        await b.dial(a.listen_addrs[0])
        await c.dial(a.listen_addrs[0])
        yield a, b, c
    finally:
        for host in reversed(hosts):
            await host.stop()


async def next_data(sub: Subscription, within_s: float) -> bytes | None:
    async def first() -> bytes:
        async for message in sub:
            return message.data
        return b""

    try:
        return await asyncio.wait_for(first(), within_s)
    except TimeoutError:
        return None


async def test_publish_to_reaches_only_the_chosen_peers(star: tuple[P2PHost, P2PHost, P2PHost]) -> None:
    a, b, c = star
    sub_b, sub_c = await b.subscribe(TOPIC), await c.subscribe(TOPIC)
    await a.subscribe(TOPIC)
    await await_until(lambda: set(a.gossip_peers(TOPIC)) == {b.peer_id, c.peer_id}, timeout_s=10)

    assert await a.publish_to(TOPIC, b"for b", [b.peer_id]) == 1
    assert await next_data(sub_b, 5) == b"for b"
    assert await next_data(sub_c, 1.5) is None  # not sent to C, and B has no link to C to forward it on

    assert await a.publish_to(TOPIC, b"for c", [c.peer_id]) == 1
    assert await next_data(sub_c, 5) == b"for c"
    assert await next_data(sub_b, 1.5) is None

    assert await a.publish_to(TOPIC, b"nobody", [peer_id_from_seed(os.urandom(32))]) == 0  # not connected: skipped
