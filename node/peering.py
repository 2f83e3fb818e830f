"""The p2p service: owns the libp2p host and keeps it connected to the configured peers.

py-libp2p does not redial a peer that restarted and only listens for ~60 s (its failed-dial cache,
ARCHITECTURE.md §1), so every node keeps its own redial loop to its bootstrap peers with a short, capped backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from node.p2p import HostConfig, P2PError, P2PHost
from node.service import Service

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BootstrapPeer:
    name: str
    peer_id: str
    multiaddr: str


@dataclass
class _Backoff:
    next_try: float = 0.0
    delay: float = 0.0


class PeeringService(Service):
    name = "p2p"
    min_backoff_s = 0.25
    max_backoff_s = 3.0
    tick_s = 0.25

    def __init__(self, config: HostConfig, bootstrap: list[BootstrapPeer]) -> None:
        self.host = P2PHost(config)
        self.bootstrap = bootstrap
        self._backoff: dict[str, _Backoff] = {p.peer_id: _Backoff() for p in bootstrap}
        self.dial_failures = 0

    async def start(self) -> None:
        await self.host.start()
        log.info("p2p host %s listening on %s", self.host.peer_id, ", ".join(self.host.listen_addrs))

    async def run(self) -> None:
        # If the libp2p side ends on its own (a library failure), the node must not linger without a network,
        # looking alive: end this service with the reason, so the node stops with exit code 1 and says why.
        redial = asyncio.create_task(self._redial(), name="redial")
        try:
            await self.host.wait_ended()
        finally:
            redial.cancel()
            await asyncio.gather(redial, return_exceptions=True)
        raise P2PError("the libp2p host stopped by itself")

    async def _redial(self) -> None:
        while True:
            connected = set(self.host.connected_peers())
            now = time.monotonic()
            due = [p for p in self.bootstrap if p.peer_id not in connected and self._backoff[p.peer_id].next_try <= now]
            if due:
                await asyncio.gather(*(self._dial(p) for p in due))
            await asyncio.sleep(self.tick_s)

    async def _dial(self, peer: BootstrapPeer) -> None:
        state = self._backoff[peer.peer_id]
        try:
            await self.host.dial(peer.multiaddr)
        except P2PError as exc:
            self.dial_failures += 1
            state.delay = min(self.max_backoff_s, max(self.min_backoff_s, state.delay * 2))
            state.next_try = time.monotonic() + state.delay
            log.debug("dial %s failed (retry in %.2f s): %s", peer.name, state.delay, exc)
            return
        state.delay = 0.0
        log.info("connected to %s (%s)", peer.name, peer.peer_id)

    async def stop(self) -> None:
        await self.host.stop()
