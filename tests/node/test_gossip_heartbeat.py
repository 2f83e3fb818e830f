"""Gossipsub's heartbeat stays at its configured 1 s, and its message cache does not replay old messages.

py-libp2p 0.8.1's adaptive gossip (on by default) re-scored a small mesh as unhealthy after ~30 s and stretched
the heartbeat to 30 s; the cache, counted in heartbeats, then replayed a minute and more of messages to every new
subscriber. The long test runs a real host past that point (~65 s: marked slow, still run in CI).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import AsyncIterator

import pytest

from node.p2p.bridge import GossipLimits, HostConfig, P2PHost, Subscription
from node.p2p.gossip import RecentMessageCache
from tests.harness import await_until

TOPIC = "/ehrnet/test/heartbeat/1"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeMessage:
    """The fields the cache reads from a pubsub protobuf message."""

    def __init__(self, seqno: int, topic: str = TOPIC) -> None:
        self.from_id = b"peer"
        self.seqno = seqno.to_bytes(8, "big")
        self.topicIDs = [topic]


def mid(seqno: int) -> bytes:
    return b"peer" + seqno.to_bytes(8, "big")


def test_the_message_cache_forgets_by_age_even_without_heartbeats() -> None:
    clock = FakeClock()
    cache = RecentMessageCache(window_size=3, history_size=5, heartbeat_s=1.0, clock=clock)
    cache.put(FakeMessage(1))
    assert cache.window(TOPIC) == [mid(1)] and cache.get(mid(1)) is not None
    clock.now += 3.5  # no heartbeat shifted the cache: only its age counts
    cache.put(FakeMessage(2))
    assert cache.window(TOPIC) == [mid(2)]  # too old to advertise or replay to a new subscriber
    assert cache.get(mid(1)) is not None  # still served to an IWANT for a while
    clock.now += 2.0
    assert cache.get(mid(1)) is None and cache.get(mid(2)) is not None
    assert cache.window("/other") == []


def test_the_message_cache_still_shifts_by_heartbeats() -> None:
    clock = FakeClock()
    cache = RecentMessageCache(window_size=3, history_size=5, heartbeat_s=1.0, clock=clock)
    cache.put(FakeMessage(1))
    for _ in range(3):
        cache.shift()
    assert cache.window(TOPIC) == [] and cache.get(mid(1)) is not None
    for _ in range(2):
        cache.shift()
    assert cache.get(mid(1)) is None
    assert not cache._cached_at  # nothing kept for messages the cache dropped


async def first_with(sub: Subscription, data: bytes, seen: list[bytes]) -> None:
    async for message in sub:
        seen.append(message.data)
        if message.data == data:
            return


@pytest.fixture
async def meshed_pair() -> AsyncIterator[tuple[P2PHost, P2PHost]]:
    a, c = P2PHost(HostConfig(seed=os.urandom(32))), P2PHost(HostConfig(seed=os.urandom(32)))
    await a.start()
    await c.start()
    try:
        await c.dial(a.listen_addrs[0])
        yield a, c
    finally:
        await c.stop()
        await a.stop()


@pytest.mark.cluster
@pytest.mark.slow
async def test_heartbeat_keeps_its_interval_past_a_minute_and_new_subscribers_get_no_stale_messages(
    meshed_pair: tuple[P2PHost, P2PHost],
) -> None:
    a, c = meshed_pair
    interval = GossipLimits().heartbeat_interval_s
    await a.subscribe(TOPIC)
    sub_c = await c.subscribe(TOPIC)
    started = time.monotonic()
    beats: list[float] = []

    async def watch_heartbeats() -> None:
        seen = a.gossip_heartbeats
        while True:
            if a.gossip_heartbeats != seen:
                seen = a.gossip_heartbeats
                beats.append(time.monotonic() - started)
            await asyncio.sleep(0.05)

    def elapsed(seconds: float) -> bool:
        return time.monotonic() - started >= seconds

    watcher = asyncio.create_task(watch_heartbeats())
    try:
        # Past the ~30 s at which adaptive gossip re-scored the mesh: `a` publishes a message that `c` gets.
        await await_until(lambda: elapsed(40), timeout_s=45, interval=0.5)
        old: list[bytes] = []
        await a.publish(TOPIC, b"old")
        await asyncio.wait_for(first_with(sub_c, b"old", old), timeout=10)
        # Ten seconds later — far beyond the cache's window of 3 heartbeats — a fresh peer subscribes.
        await await_until(lambda: elapsed(50), timeout_s=15, interval=0.5)
        fresh = P2PHost(HostConfig(seed=os.urandom(32)))
        await fresh.start()
        try:
            await fresh.dial(a.listen_addrs[0])
            sub_fresh = await fresh.subscribe(TOPIC)
            received: list[bytes] = []
            reader = asyncio.create_task(first_with(sub_fresh, b"new", received))

            async def new_message_arrived() -> bool:
                if not reader.done():
                    await a.publish(TOPIC, b"new")  # until the heartbeat-built mesh carries it
                return reader.done()

            await await_until(new_message_arrived, timeout_s=15, interval=0.2, what="a message reaches the fresh peer")
            assert b"old" not in received, "the message cache replayed a 10 s old message to a new subscriber"
        finally:
            await fresh.stop()
        await await_until(lambda: elapsed(65), timeout_s=20, interval=0.5)
    finally:
        watcher.cancel()
    gaps = [later - earlier for earlier, later in itertools.pairwise(beats)]
    print(f"{len(beats)} heartbeats in {beats[-1]:.1f} s, longest gap {max(gaps):.2f} s" if gaps else "no heartbeats")
    assert beats and beats[-1] > 60
    assert max(gaps) < interval + 2.0, f"a heartbeat came {max(gaps):.1f} s after the one before"
    assert len(beats) >= 60 / interval * 0.8
