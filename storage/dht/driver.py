"""The async shell that runs a pure `Lookup` over a transport the node supplies.

`send(peer, request)` must deliver one DHT request and return the decoded response (the node implements it
with a libp2p stream and `messages.encode_message` / `decode_response`). Up to α queries run concurrently;
each is bounded by the lookup's timeout; any transport or protocol error counts as that peer failing, and the
routing table is told so it can drop the peer. Peers that answered are recorded in the routing table.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from storage.dht.keyspace import Contact
from storage.dht.lookup import Lookup, LookupKind
from storage.dht.messages import FindNode, GetProviders, Nodes, Request, Response
from storage.dht.node import DhtNode
from storage.errors import ProtocolError, StorageError

Send = Callable[[Contact, Request], Awaitable[Response]]
Clock = Callable[[], float]


async def run_lookup(node: DhtNode, lookup: Lookup, send: Send, clock: Clock, provider_key: bytes = b"") -> Lookup:
    """Drive `lookup` to completion; `provider_key` is the record key for GET_PROVIDERS lookups."""
    request: Request = (
        GetProviders(provider_key) if lookup.kind is LookupKind.GET_PROVIDERS else FindNode(lookup.target)
    )
    pending: dict[asyncio.Future[Response], Contact] = {}
    try:
        while True:
            for peer in lookup.next_queries(clock()):
                pending[asyncio.ensure_future(asyncio.wait_for(send(peer, request), lookup.timeout))] = peer
            if not pending or lookup.finished:
                return lookup
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                peer = pending.pop(future)
                now = clock()
                try:
                    response = future.result()
                    if not isinstance(response, Nodes):
                        raise ProtocolError("expected a 'nodes' response")
                except (StorageError, OSError, TimeoutError):
                    lookup.on_failure(peer.peer_id, now)
                    node.table.peer_failed(peer.peer_id, now)
                    continue
                lookup.on_response(peer.peer_id, response.closer, response.providers, now)
                node.table.observe(peer, now)
    finally:
        for future in pending:
            future.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
