"""One connection per peer, and the same one at both ends, when two peers dial each other at once.

Part of the libp2p bridge (like `node/p2p/bridge.py` it imports libp2p; nothing outside the bridge's `node/p2p/`
modules does).

A node that restarts dials every peer at once, while its peers, which have been redialling it since it went down
(`node/p2p/peering.py`), dial it too: both dials succeed, and each end holds two connections to the other. py-libp2p
0.8.1 (`Swarm.add_conn`, `_trim_connections`) keeps a new connection for a 20 s grace period and later trims the
one with the fewest streams, each end deciding alone. Measured on a 4-node cluster: the restarted node opened its
streams on one of the two while its peer used the other; streams sent on it reached the peer ~3 s late (a status
request took 3.8 s, a peer's request the other way timed out after 3 s), or its pings went unanswered until the
keepalive closed everything 5 s later, and such restarts caught up 7–11 s after the API answered (load 8–13).

The rule here needs no message: of two connections between the same two peers, both ends keep the one dialled by
the peer with the smaller peer ID (compared as bytes, the same at both ends) and close the other at once (an
inbound connection when we are the smaller, an outbound one otherwise). Streams already opened on the closed one
fail and their users retry on the survivor (the keepalive opens a fresh ping stream, gossipsub reopens its stream
to a peer that is still connected, a ledger request is asked again). When every connection has the same dialler
(a stale one and its replacement) the newest is kept. This is the choice go-libp2p's simultaneous-open rule makes
deterministic too; the libp2p connections spec leaves it to implementations.
"""

from __future__ import annotations

import logging
from typing import Any

import trio
from libp2p.peer.id import ID

log = logging.getLogger(__name__)


def dialled_by_us(conn: Any) -> bool:
    """Whether this end dialled `conn` (py-libp2p records the direction as an enum or a string)."""
    direction = conn.direction
    return str(getattr(direction, "name", direction)).lower() == "outbound"


def connection_to_keep(own: ID, peer: ID, connections: list[Any]) -> Any:
    """Of several connections to `peer` (oldest first), the one both ends keep: dialled by the smaller peer ID,
    the newest of those; the newest of all if none was."""
    we_dial = own.to_bytes() < peer.to_bytes()
    preferred = [c for c in connections if dialled_by_us(c) == we_dial]
    return (preferred or connections)[-1]


def install(swarm: Any, own: ID) -> None:
    """Wrap `swarm.add_conn` (an instance attribute shadows the class's method; wraps whatever wrapper is there)."""
    add_conn = swarm.add_conn

    async def add_conn_keeping_one(muxed_conn: Any, direction: str = "unknown") -> Any:
        swarm_conn = await add_conn(muxed_conn, direction)
        peer = muxed_conn.peer_id
        connections = [c for c in swarm.connections.get(peer, []) if not c.is_closed]
        if len(connections) > 1:
            keep = connection_to_keep(own, peer, connections)
            surplus = [c for c in connections if c is not keep]
            # Out of the swarm's table first, so that no new stream is opened on them while they close.
            swarm.connections[peer] = [c for c in swarm.connections.get(peer, []) if c not in surplus]
            log.debug(
                "two connections to %s: closing %d, keeping the one dialled by the smaller peer ID", peer, len(surplus)
            )
            for conn in surplus:
                swarm.manager.run_task(_close, conn)
        return swarm_conn

    swarm.add_conn = add_conn_keeping_one


async def _close(conn: Any) -> None:
    with trio.move_on_after(2.0):
        try:
            await conn.close()
        except Exception as exc:  # already closing, or the peer closed it first: either way it is gone
            log.debug("closing a surplus connection: %s", exc)
