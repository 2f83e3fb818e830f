"""The keepalive's rules against a fake host: silence closes the connection after the set number of misses, an
answer (even an error) keeps it, and the documented bound follows from the settings."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import pytest

from node.p2p.bridge import P2PError, P2PHost
from node.p2p.keepalive import PING_BYTES, PING_PROTOCOL, Keepalive, KeepaliveSettings
from tests.harness import await_until

FAST = KeepaliveSettings(interval_s=0.05, timeout_s=0.1, misses=2)


class FakeStream:
    """A ping stream whose peer echoes, stays silent, or fails, as its host says."""

    def __init__(self, host: FakeHost) -> None:
        self.host = host
        self.written = b""
        self.reset_called = False

    async def write(self, data: bytes) -> None:
        self.written = data

    async def read_exactly(self, n: int) -> bytes:
        assert n == PING_BYTES
        if self.host.mode == "silent":
            await asyncio.sleep(3600)
        if self.host.mode == "error":
            raise P2PError("stream reset by peer")
        if self.host.mode == "slow":  # a busy peer: every answer comes after the timeout, well within the bound
            await asyncio.sleep(1.5 * FAST.timeout_s)
        if self.host.mode == "stalled-here":  # the answer arrives while our own loop is stalled by other work
            loop = asyncio.get_running_loop()
            answer: asyncio.Future[bytes] = loop.create_future()
            loop.call_later(0.2 * FAST.timeout_s, time.sleep, 3 * FAST.timeout_s)
            loop.call_later(0.5 * FAST.timeout_s, answer.set_result, self.written)
            return await answer
        return self.written

    async def reset(self) -> None:
        self.reset_called = True


class FakeHost:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.peers = ["peer-a"]
        self.disconnected: list[tuple[str, float]] = []
        self.streams: list[FakeStream] = []

    def connected_peers(self) -> list[str]:
        return list(self.peers)

    async def open_stream(self, peer_id: str, protocol: str) -> FakeStream:
        assert protocol == PING_PROTOCOL
        stream = FakeStream(self)
        self.streams.append(stream)
        return stream

    async def disconnect(self, peer_id: str) -> bool:
        self.disconnected.append((peer_id, time.monotonic()))
        self.peers.remove(peer_id)
        return True


async def run_keepalive(host: FakeHost, until: Any, timeout_s: float = 5.0) -> Keepalive:
    keepalive = Keepalive(cast(P2PHost, host), FAST)
    task = asyncio.create_task(keepalive.run())
    try:
        await await_until(until, timeout_s=timeout_s, interval=0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return keepalive


def test_the_bound_is_one_interval_plus_the_misses() -> None:
    assert KeepaliveSettings().detection_bound_s == 6.0
    assert KeepaliveSettings(interval_s=3, timeout_s=1, misses=2).detection_bound_s == 9.0  # pings paced by interval
    with pytest.raises(ValueError, match="misses"):
        KeepaliveSettings(misses=0)


async def test_a_silent_peer_is_disconnected_within_the_bound() -> None:
    host = FakeHost("silent")
    started = time.monotonic()
    keepalive = await run_keepalive(host, lambda: host.disconnected)
    assert host.disconnected[0][0] == "peer-a"
    assert host.disconnected[0][1] - started <= FAST.detection_bound_s + 0.2
    assert keepalive.closed_silent == 1
    assert len(host.streams) == 1 and host.streams[0].reset_called  # the unanswered ping's stream, reset at the close


async def test_an_answering_peer_keeps_its_connection_on_one_stream() -> None:
    host = FakeHost("echo")
    keepalive = Keepalive(cast(P2PHost, host), FAST)
    task = asyncio.create_task(keepalive.run())
    try:
        await await_until(lambda: "peer-a" in keepalive.rtt_ms, timeout_s=5)
        deadline = time.monotonic() + 2 * FAST.detection_bound_s  # "nothing happens": watch it not happen
        while time.monotonic() < deadline:
            assert not host.disconnected
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert not host.disconnected and len(host.streams) == 1


async def test_an_error_answer_is_not_silence() -> None:
    host = FakeHost("error")
    keepalive = Keepalive(cast(P2PHost, host), FAST)
    task = asyncio.create_task(keepalive.run())
    try:
        await await_until(lambda: len(host.streams) >= 2 * FAST.misses + 1, timeout_s=5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert not host.disconnected and keepalive.closed_silent == 0


@pytest.mark.parametrize("mode", ["slow", "stalled-here"])
async def test_a_late_answer_keeps_the_connection(mode: str) -> None:
    """A ping answered after its timeout but before the silence bound is an answer: neither a busy peer nor a
    stall of this node's own loop closes the connection (each closed connections between busy honest validators
    every few seconds on a loaded machine, and consensus stalled while they redialled)."""
    host = FakeHost(mode)
    keepalive = Keepalive(cast(P2PHost, host), FAST)
    task = asyncio.create_task(keepalive.run())
    try:
        await await_until(lambda: "peer-a" in keepalive.rtt_ms, timeout_s=5)
        deadline = time.monotonic() + 3 * FAST.detection_bound_s  # "nothing happens": watch it not happen
        while time.monotonic() < deadline:
            assert not host.disconnected
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert not host.disconnected and keepalive.closed_silent == 0
    assert len(host.streams) == 1  # every ping on the one stream
