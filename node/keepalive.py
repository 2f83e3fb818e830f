"""Keepalive: notice a dead connection within a known bound and close it, so the redial loop reconnects.

py-libp2p 0.8.1 answers pings but never closes a connection whose peer has stopped answering: yamux's own RTT
ping has no timeout, and TCP with unacknowledged data retries for many minutes (`tcp_retries2`) before it gives
up. A peer that is paused, or behind a link cut without a FIN, therefore stayed "connected": gossip went into a
void and nothing redialled it when the link came back (ARCHITECTURE.md §1).

Each connected peer is pinged with the libp2p ping protocol (`/ipfs/ping/1.0.0`: 32 random bytes, echoed back)
every `interval_s` on one long-lived stream. A ping not answered within `timeout_s` is a miss; the stream is
reset and the next ping opens a fresh one. After `misses` consecutive misses the connection is closed. Only
silence counts: a peer that answers with an error is alive.

Bound, from the moment a peer goes silent to the close: the ping before was answered just in time, the next one
starts at most `interval_s` later, and each of the `misses` pings that follow takes `max(interval_s, timeout_s)`:
`interval_s + misses × max(interval_s, timeout_s)` = 1 + 2 × 2.5 = 6 s by default.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass

from node.p2p import P2PError, P2PHost, P2PStream

log = logging.getLogger(__name__)

PING_PROTOCOL = "/ipfs/ping/1.0.0"
PING_BYTES = 32


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
        stream: P2PStream | None = None
        misses = 0
        try:
            while peer in self.host.connected_peers():
                started = loop.time()
                try:
                    async with asyncio.timeout(settings.timeout_s):
                        if stream is None:
                            stream = await self.host.open_stream(peer, PING_PROTOCOL)
                        await _ping(stream)
                    misses = 0
                    self.rtt_ms[peer] = (loop.time() - started) * 1000
                except TimeoutError:
                    misses += 1
                    await _discard(stream)
                    stream = None
                    if misses >= settings.misses:
                        await self._close_silent(peer)
                        return
                except P2PError as exc:  # an answer, even an error, means the peer is alive
                    log.debug("keepalive ping to %s failed: %s", peer, exc)
                    misses = 0
                    await _discard(stream)
                    stream = None
                await asyncio.sleep(max(0.0, started + settings.interval_s - loop.time()))
        finally:
            self.rtt_ms.pop(peer, None)
            await _discard(stream)

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
