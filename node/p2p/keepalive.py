"""Keepalive: notice a dead connection within a known bound and close it, so the redial loop reconnects.

py-libp2p 0.8.1 answers pings but never closes a connection whose peer has stopped answering: yamux's own RTT
ping has no timeout, and TCP with unacknowledged data retries for many minutes (`tcp_retries2`) before it gives
up. A peer that is paused, or behind a link cut without a FIN, therefore stayed "connected": gossip went into a
void and nothing redialled it when the link came back (docs/ARCHITECTURE.md §4).

Each connected peer is pinged with the libp2p ping protocol (`/ipfs/ping/1.0.0`: 32 random bytes, echoed back)
every `interval_s` on one long-lived stream. A ping not yet answered after `timeout_s` is a miss, but its answer
is still awaited on the same stream: an answer however late keeps the connection. After `misses` misses in a row
without an answer — `misses × max(interval_s, timeout_s)` of silence, counted only while this node's own event
loop runs — the connection is closed. Only silence counts: a peer that answers with an error is alive.

Bound, from the moment a peer goes silent to the close (on a loop that is not stalled): the ping before was
answered just in time, the next one starts at most `interval_s` later and is given up after
`misses × max(interval_s, timeout_s)`: `interval_s + misses × max(interval_s, timeout_s)` = 1 + 2 × 2.5 = 6 s by
default.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass

from node.p2p.bridge import P2PError, P2PHost, P2PStream

log = logging.getLogger(__name__)

PING_PROTOCOL = "/ipfs/ping/1.0.0"
PING_BYTES = 32
# Silence is measured in steps of this length, so that a stall of this node's own loop is not counted as silence.
SILENCE_STEP_S = 0.25


@dataclass(frozen=True)
class KeepaliveSettings:
    interval_s: float = 1.0
    timeout_s: float = 2.5  # generous against a busy peer's event loop: a false alarm costs a reconnect
    misses: int = 2

    def __post_init__(self) -> None:
        if self.interval_s <= 0 or self.timeout_s <= 0 or self.misses < 1:
            raise ValueError("keepalive: interval_s and timeout_s must be positive and misses at least 1")

    @property
    def detection_bound_s(self) -> float:
        """Longest time from a peer going silent to its connection being closed."""
        return self.interval_s + self.misses * max(self.interval_s, self.timeout_s)


class Keepalive:
    """Pings every connected peer of `host` and closes the connections that stop answering."""

    def __init__(self, host: P2PHost, settings: KeepaliveSettings | None = None) -> None:
        self.host = host
        self.settings = settings or KeepaliveSettings()
        self.closed_silent = 0  # connections closed because their peer stopped answering
        self.rtt_ms: dict[str, float] = {}  # last round-trip time per peer

    async def run(self) -> None:
        """Watch peers as they connect, until cancelled."""
        watchers: dict[str, asyncio.Task[None]] = {}
        try:
            while True:
                for peer, task in list(watchers.items()):
                    if task.done():
                        del watchers[peer]
                for peer in self.host.connected_peers():
                    if peer not in watchers:
                        watchers[peer] = asyncio.create_task(self._watch(peer), name=f"keepalive:{peer}")
                await asyncio.sleep(self.settings.interval_s / 4)
        finally:
            for task in watchers.values():
                task.cancel()
            await asyncio.gather(*watchers.values(), return_exceptions=True)

    async def _watch(self, peer: str) -> None:
        settings, loop = self.settings, asyncio.get_running_loop()
        opened: list[P2PStream] = []  # the ping stream, once open (a list so the ping task can set it)
        try:
            while peer in self.host.connected_peers():
                started = loop.time()
                ping = asyncio.create_task(self._ping(peer, opened), name=f"ping:{peer}")
                answered = await self._await_answer(ping)
                if answered is None:
                    await self._close_silent(peer)
                    return
                if answered:
                    self.rtt_ms[peer] = (loop.time() - started) * 1000
                else:  # an error answer: the peer is alive; the next ping opens a fresh stream
                    await _discard(opened.pop() if opened else None)
                await asyncio.sleep(max(0.0, started + settings.interval_s - loop.time()))
        finally:
            self.rtt_ms.pop(peer, None)
            await _discard(opened.pop() if opened else None)

    async def _ping(self, peer: str, opened: list[P2PStream]) -> None:
        if not opened:
            opened.append(await self.host.open_stream(peer, PING_PROTOCOL))
        await _ping(opened[0])

    async def _await_answer(self, ping: asyncio.Task[None]) -> bool | None:
        """Wait for one ping's answer however late it comes, as long as the peer has not been silent for
        `misses × max(interval_s, timeout_s)`: True when echoed, False when the peer answered with an error, None
        when it stayed silent (the ping is then cancelled).

        Silence is counted only while this node's own event loop runs. A late answer is still an answer: the
        former rule gave up on a ping after `timeout_s`, reset its stream and opened another (a multistream
        negotiation of several round trips) for the next one, so on a loaded machine a peer stalled a little over
        `timeout_s` — or this node's own loop, with the answer queued behind its stall — failed both pings and
        lost its connection; busy honest validators closed each other's connections every few seconds and
        consensus stalled while they redialled."""
        settings, loop = self.settings, asyncio.get_running_loop()
        limit = settings.misses * max(settings.interval_s, settings.timeout_s)
        step = min(SILENCE_STEP_S, limit)
        silent = 0.0
        try:
            while True:
                before = loop.time()
                done, _ = await asyncio.wait({ping}, timeout=step)
                if done:
                    try:
                        ping.result()
                    except P2PError as exc:  # an answer, even an error, means the peer is alive
                        log.debug("keepalive ping failed: %s", exc)
                        return False
                    return True
                # A wait that overran its step by more than a step was this loop stalling, not the peer.
                silent += min(loop.time() - before, 2 * step)
                if silent >= limit:
                    return None
        finally:
            if not ping.done():
                ping.cancel()
                await asyncio.gather(ping, return_exceptions=True)

    async def _close_silent(self, peer: str) -> None:
        log.info(
            "peer %s answered no ping for %.1f s: closing the connection",
            peer,
            self.settings.misses * self.settings.timeout_s,
        )
        self.closed_silent += 1
        with contextlib.suppress(P2PError):
            await self.host.disconnect(peer)


async def _ping(stream: P2PStream) -> None:
    payload = os.urandom(PING_BYTES)
    await stream.write(payload)
    if await stream.read_exactly(PING_BYTES) != payload:
        raise P2PError("ping answered with other bytes")


async def _discard(stream: P2PStream | None) -> None:
    """Reset a ping stream without waiting on a peer that may not read (the reset is a write)."""
    if stream is not None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                await stream.reset()
