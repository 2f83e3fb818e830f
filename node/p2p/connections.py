"""Connection control for the libp2p bridge: refusing peers by peer ID, and closing connections that may be dead.

Part of the libp2p bridge (like `node/p2p/bridge.py` it imports trio; nothing outside the bridge's `node/p2p/`
modules does).

**Gating.** py-libp2p 0.8.1's `ConnectionGate` filters by IP address only, and every peer of a local cluster is
127.0.0.1, so fault injection without root (a "partition" between processes on one machine) needs gating by
peer ID. Every connection, whichever side dialled, is registered through `Swarm.add_conn` after the Noise
handshake has authenticated the remote peer ID, and every dial (ours, the library's auto-connector's, one made
implicitly by opening a stream) goes through `Swarm.dial_peer`; `PeerGate.install` wraps both on the swarm
instance, so a blocked peer is neither dialled nor let in, whoever asks.

**Closing.** Closing a yamux connection first writes a GoAway frame under the connection's write lock. To a
peer that stopped reading (paused, or behind a cut link) that write, or a gossip write already holding the lock,
can block for as long as TCP keeps retrying: the close would hang and the dead connection stay "connected".
`close_connections` therefore bounds the orderly close and then closes the socket itself, which fails every
pending read and write on it at once.

**Refusals.** A peer answering `na` to a protocol is told apart from a dead connection (`refused_protocol`), and
the library's 7-line ERROR block for it is filtered out: the caller logs it, once, at the level it judges right.

**Reopening.** A connection the peer closed while this host's loop was busy is still listed until the loop runs
again; `open_stream_reconnecting` drops it and opens the stream on a fresh connection instead of failing.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import trio
from libp2p.io.exceptions import ConnectionClosedError
from libp2p.network.exceptions import SwarmException
from libp2p.peer.id import ID
from libp2p.protocol_muxer.exceptions import ProtocolNotSupportedError
from libp2p.stream_muxer.exceptions import MuxedStreamError

log = logging.getLogger(__name__)

# How long an orderly close may take before the socket is closed under it.
ORDERLY_CLOSE_S = 1.0


class PeerGate:
    """The peer IDs a host refuses to dial or accept, installed on one py-libp2p swarm: those blocked by the
    operator (fault injection, until the next `set_blocked`) and those banned for invalid gossip (until their ban
    ends, node/p2p/peer_score.py)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._blocked: frozenset[str] = frozenset()
        self._banned: dict[str, float] = {}
        self._clock = clock

    @property
    def blocked(self) -> frozenset[str]:
        return self._blocked

    def blocks(self, peer_id: str) -> bool:
        return peer_id in self._blocked or self.banned_until(peer_id) is not None

    def ban(self, peer_id: str, until: float) -> None:
        self._banned[peer_id] = until

    def banned_until(self, peer_id: str) -> float | None:
        until = self._banned.get(peer_id)
        if until is None:
            return None
        if until <= self._clock():
            del self._banned[peer_id]  # the ban is over
            return None
        return until

    def banned(self) -> dict[str, float]:
        """Peers banned now, with the monotonic time each ban ends."""
        return {peer: until for peer in list(self._banned) if (until := self.banned_until(peer)) is not None}

    def set_blocked(self, peer_ids: Iterable[str]) -> frozenset[str]:
        """Replace the blocked set; returns the peers newly blocked (whose connections the caller closes)."""
        new = frozenset(peer_ids)
        added = new - self._blocked
        self._blocked = new
        return added

    def install(self, swarm: Any) -> None:
        """Wrap `swarm.dial_peer` and `swarm.add_conn` (instance attributes shadow the class's methods)."""
        dial_peer, add_conn = swarm.dial_peer, swarm.add_conn

        async def gated_dial_peer(peer_id: ID) -> Any:
            if self.blocks(str(peer_id)):
                raise SwarmException(f"peer {peer_id} is blocked by this host")
            return await dial_peer(peer_id)

        async def gated_add_conn(muxed_conn: Any, direction: str = "unknown") -> Any:
            peer = str(muxed_conn.peer_id)
            if self.blocks(peer):
                log.debug("refused a %s connection from blocked peer %s", direction, peer)
                with trio.move_on_after(ORDERLY_CLOSE_S), contextlib.suppress(Exception):
                    await muxed_conn.secured_conn.close()
                raise SwarmException(f"peer {peer} is blocked by this host")
            return await add_conn(muxed_conn, direction)

        swarm.dial_peer = gated_dial_peer
        swarm.add_conn = gated_add_conn


async def close_connections(swarm: Any, peer_id: ID) -> int:
    """Close every connection to `peer_id`, within ~ORDERLY_CLOSE_S even if the peer has stopped reading.

    Returns how many connections there were.
    """
    connections = list(swarm.get_connections(peer_id))
    if not connections:
        return 0
    with trio.move_on_after(ORDERLY_CLOSE_S) as scope:
        with contextlib.suppress(Exception):
            await swarm.close_peer(peer_id)
    if scope.cancelled_caught:
        log.info("closing the connection to %s took over %.1f s: closing its socket", peer_id, ORDERLY_CLOSE_S)
        for conn in connections:
            socket_stream = _socket_stream_of(conn)
            if socket_stream is not None:
                with contextlib.suppress(Exception):
                    await socket_stream.aclose()  # wakes every task blocked on this socket with an error
        with trio.move_on_after(ORDERLY_CLOSE_S), contextlib.suppress(Exception):
            await swarm.close_peer(peer_id)
    return len(connections)


async def close_all(swarm: Any, peer_ids: Iterable[str]) -> None:
    """`close_connections` for several peers at once."""
    async with trio.open_nursery() as nursery:
        for peer in peer_ids:
            nursery.start_soon(close_connections, swarm, ID.from_base58(peer))


async def open_stream_reconnecting(host: Any, peer_id: ID, protocol: Any) -> Any:
    """`host.new_stream`, once more on a fresh connection if the one the swarm still listed turns out dead.

    A host whose loop was busy (CPU-bound work) cannot answer pings, so its peer's keepalive rightly closes the
    connection; until this host's loop runs again its swarm still lists that connection, and the next stream was
    opened on it and failed ("Failed to send SYN: broken pipe") instead of dialling afresh.
    """
    try:
        return await host.new_stream(peer_id, [protocol])
    except Exception as exc:
        if not _connection_died(exc):
            raise
    await close_connections(host.get_network(), peer_id)
    return await host.new_stream(peer_id, [protocol])


def refused_protocol(exc: BaseException) -> bool:
    """Whether opening a stream failed because the peer answered `na` to the protocol (anywhere in the chain)."""
    seen: BaseException | None = exc
    for _ in range(12):
        if seen is None:
            return False
        if isinstance(seen, ProtocolNotSupportedError) or "protocols not supported" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class _QuietRefusals(logging.Filter):
    """py-libp2p logs every stream a peer refuses as a 7-line ERROR block (host/basic_host.py, "Failed to open
    stream to peer …") before raising. A refusal is expected churn (a light client serves few protocols): the
    bridge raises ProtocolRefused and the caller logs one line at the level it judges right."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Failed to open stream to peer")


logging.getLogger("libp2p.host.basic_host").addFilter(_QuietRefusals())


def _connection_died(exc: BaseException) -> bool:
    """Whether a failure to open a stream came from the connection under it being gone (not, say, from the peer
    refusing the protocol): a muxer or socket error anywhere in the exception's chain."""
    seen: BaseException | None = exc
    for _ in range(12):
        if seen is None:
            return False
        if isinstance(
            seen, MuxedStreamError | ConnectionClosedError | trio.BrokenResourceError | trio.ClosedResourceError
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _socket_stream_of(conn: Any) -> trio.SocketStream | None:
    """The trio socket under a swarm connection (SwarmConn → yamux → secure session → noise → raw → TCP)."""
    obj = conn
    for _ in range(10):
        if isinstance(obj, trio.SocketStream):
            return obj
        for attr in ("muxed_conn", "secured_conn", "conn", "stream"):
            inner = getattr(obj, attr, None)
            if inner is not None and inner is not obj:
                obj = inner
                break
        else:
            return None
    return None
