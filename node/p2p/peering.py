"""The p2p service: owns the libp2p host and keeps it connected to the configured peers.

py-libp2p does not redial a peer that restarted and only listens for ~60 s (its failed-dial cache,
docs/ARCHITECTURE.md §4), and never closes a connection whose peer has gone silent, so every node runs two loops of
its own: a keepalive (`node/p2p/keepalive.py`) that closes a silent connection within its bound, and a redial loop
to its bootstrap peers.

Redial policy: a peer found disconnected is dialled at once; after a failed dial the next waits 0.25 s, doubling
to at most 2 s, with ±20 % jitter so that two nodes that lost each other at the same moment do not dial each
other in lockstep (two crossing dials give two connections, and the surplus one is closed). When a connection
is lost (closed by either side, or the peer unblocked) both ends notice it at the same moment, so "at once" would
make them dial each other at once: of the two, only the one with the smaller peer ID dials at once, and the other
waits `yield_s` for that connection to arrive before it dials itself. Crossing dials were seen to leave one end
holding the connection the other had already closed as surplus (py-libp2p trims each side's surplus on its own):
no stream could be opened on it, nothing was noticed until the keepalive closed it 5 s later, and a disconnect
or a healed gate split cost consensus that much (more, with the redial after it crossing again). Across a healed
partition that means a reconnect within ~2.4 s of the link coming back when dials fail fast (refused, network
unreachable), or within a dial timeout more when they were hanging on an unanswered SYN. Peers blocked through
`P2PHost.set_blocked_peers` are not dialled, and are dialled at once when unblocked. One dial per peer every
2 s is not hammering anyone.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass

from node.p2p.bridge import HostConfig, P2PError, P2PHost
from node.p2p.keepalive import Keepalive, KeepaliveSettings
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
    max_backoff_s = 2.0
    jitter = 0.2
    tick_s = 0.25
    yield_s = 1.0  # the larger peer ID's wait before redialling a lost peer (see the module docstring)

    def __init__(
        self,
        config: HostConfig,
        bootstrap: list[BootstrapPeer],
        keepalive: KeepaliveSettings | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.host = P2PHost(config)
        self.bootstrap = bootstrap
        self.keepalive = Keepalive(self.host, keepalive)
        self._rng = rng or random.Random()
        self._backoff: dict[str, _Backoff] = {p.peer_id: _Backoff() for p in bootstrap}
        self.dial_failures = 0

    def add_bootstrap_peer(self, peer: BootstrapPeer) -> None:
        """Keep `peer` connected too (from the next redial round)."""
        if peer.peer_id not in self._backoff:
            self.bootstrap.append(peer)
            self._backoff[peer.peer_id] = _Backoff()

    def status(self) -> dict[str, object]:
        """For /status: each peer's last ping round trip (a peer is listed once a request–response stream to it
        has completed on the current connection) and how many connections the keepalive has closed as silent."""
        return {
            "peer_rtt_ms": {peer: round(ms, 1) for peer, ms in sorted(self.keepalive.rtt_ms.items())},
            "keepalive_closed": self.keepalive.closed_silent,
        }

    async def start(self) -> None:
        await self.host.start()
        log.info("p2p host %s listening on %s", self.host.peer_id, ", ".join(self.host.listen_addrs))

    async def run(self) -> None:
        # If the libp2p side ends on its own (a library failure), the node must not linger without a network,
        # looking alive: end this service with the reason, so the node stops with exit code 1 and says why.
        loops = [
            asyncio.create_task(self._redial(), name="redial"),
            asyncio.create_task(self.keepalive.run(), name="keepalive"),
        ]
        try:
            await self.host.wait_ended()
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
        raise P2PError("the libp2p host stopped by itself")

    async def _redial(self) -> None:
        # One dial task per peer, so a dial hanging on a silent peer (up to the dial timeout) holds back no other.
        dialing: dict[str, asyncio.Task[None]] = {}
        reachable: set[str] = set()  # connected (or blocked) at the last tick: losing one is a lost connection
        try:
            while True:
                for peer_id, task in list(dialing.items()):
                    if task.done():
                        del dialing[peer_id]
                connected = set(self.host.connected_peers())
                blocked = self.host.blocked_peers
                now = time.monotonic()
                for peer in self.bootstrap:
                    state = self._backoff[peer.peer_id]
                    if peer.peer_id in blocked:
                        state.delay, state.next_try = 0.0, 0.0  # dialled as soon as it is unblocked
                        continue
                    if peer.peer_id in reachable and peer.peer_id not in connected:
                        # Just lost: the peer notices it too; only the smaller peer ID redials at once.
                        state.delay = 0.0
                        state.next_try = now + (self.yield_s if self.host.peer_id > peer.peer_id else 0.0)
                    if peer.peer_id not in connected and peer.peer_id not in dialing and state.next_try <= now:
                        dialing[peer.peer_id] = asyncio.create_task(self._dial(peer), name=f"dial:{peer.name}")
                reachable = connected | set(blocked)
                await asyncio.sleep(self.tick_s)
        finally:
            for task in dialing.values():
                task.cancel()
            await asyncio.gather(*dialing.values(), return_exceptions=True)

    async def _dial(self, peer: BootstrapPeer) -> None:
        state = self._backoff[peer.peer_id]
        try:
            await self.host.dial(peer.multiaddr)
        except P2PError as exc:
            self.dial_failures += 1
            state.delay = min(self.max_backoff_s, max(self.min_backoff_s, state.delay * 2))
            jittered = state.delay * self._rng.uniform(1 - self.jitter, 1 + self.jitter)
            state.next_try = time.monotonic() + jittered
            log.debug("dial %s failed (retry in %.2f s): %s", peer.name, jittered, exc)
            return
        state.delay = 0.0
        log.info("connected to %s (%s)", peer.name, peer.peer_id)

    async def stop(self) -> None:
        await self.host.stop()
