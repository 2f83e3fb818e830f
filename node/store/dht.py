"""The Kademlia DHT on the node's libp2p host: `/ehrnet/kad/1.0.0` served and spoken (docs/STORAGE.md §3).

The routing table, lookups and provider records are the pure `storage.dht` code; this shell gives them a
transport and a clock. Contacts are libp2p peer IDs (bytes) with full multiaddrs (…/p2p/<peer id>); a contact
we are not connected to is dialled on one of its addresses before the request. Addresses are learned from the
bootstrap list, from the peers our lookups return and from ADD_PROVIDER records, and kept in an address book,
because an inbound request tells us only the sender's authenticated peer ID.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence

import base58

from node.p2p.bridge import P2PError, P2PHost, RequestError
from storage.address import CID
from storage.dht.driver import run_lookup
from storage.dht.keyspace import Contact, provider_key
from storage.dht.lookup import QUERY_TIMEOUT, Lookup
from storage.dht.messages import (
    MAX_ADDRS,
    MAX_MESSAGE_BYTES,
    PROTOCOL_ID,
    AddProvider,
    Nodes,
    Ping,
    Request,
    Response,
    decode_request,
    decode_response,
    encode_message,
)
from storage.dht.node import DhtNode
from storage.errors import ProtocolError, StorageError

log = logging.getLogger(__name__)

BUCKET_REFRESH_S = 3600.0  # libp2p kad-dht refreshes buckets not queried for an hour


def peer_bytes(peer_id: str) -> bytes:
    """The binary peer ID (a multihash) of a base58 peer ID as libp2p prints it."""
    return base58.b58decode(peer_id)


def peer_text(peer_id: bytes) -> str:
    return base58.b58encode(peer_id).decode()


def full_addrs(addrs: Iterable[str], peer_id: str) -> tuple[str, ...]:
    """Multiaddrs ending in /p2p/<peer id>, as `P2PHost.dial` needs them."""
    suffix = f"/p2p/{peer_id}"
    return tuple(a if a.endswith(suffix) else a + suffix for a in addrs)[:MAX_ADDRS]


class LibP2PDht:
    """One node's DHT participant over libp2p. `start()` after the host is listening."""

    def __init__(
        self,
        host: P2PHost,
        bootstrap: Sequence[tuple[str, str]] = (),
        clock: Callable[[], float] = time.monotonic,
        query_timeout_s: float = QUERY_TIMEOUT,
        rng: random.Random | None = None,
    ) -> None:
        self.host = host
        self.clock = clock
        self.query_timeout_s = query_timeout_s
        self._rng = rng or random.Random()
        self._bootstrap = list(bootstrap)  # (peer ID, multiaddr)
        self.addresses: dict[bytes, tuple[str, ...]] = {}
        self._to_ping: dict[bytes, Contact] = {}
        self._node: DhtNode | None = None

    @property
    def node(self) -> DhtNode:
        if self._node is None:
            raise RuntimeError("the DHT has not been started")
        return self._node

    @property
    def local(self) -> Contact:
        return self.node.local

    def start(self) -> None:
        me = self.host.peer_id
        self._node = DhtNode(Contact(peer_bytes(me), full_addrs(self.host.listen_addrs, me)))
        for peer_id, addr in self._bootstrap:
            self.learn(Contact(peer_bytes(peer_id), full_addrs([addr], peer_id)))
        self.host.set_request_handler(PROTOCOL_ID, self._serve, max_request_bytes=MAX_MESSAGE_BYTES)

    # ---- contacts -----------------------------------------------------------------------------------------

    def learn(self, contact: Contact) -> None:
        """Remember a peer's addresses and put it in the routing table."""
        if contact.peer_id == self.local.peer_id:
            return
        if contact.addrs:
            self.addresses[contact.peer_id] = contact.addrs
        self._observe(self.contact_of(contact.peer_id))

    def contact_of(self, peer_id: bytes) -> Contact:
        return Contact(peer_id, self.addresses.get(peer_id, ()))

    def _observe(self, contact: Contact) -> None:
        oldest = self.node.table.observe(contact, self.clock())
        if oldest is not None:
            self._to_ping[oldest.peer_id] = oldest

    def live_contacts(self) -> list[Contact]:
        """Peers we hold a connection to right now."""
        return [self.contact_of(peer_bytes(p)) for p in self.host.connected_peers()]

    async def ensure_connected(self, peer: Contact) -> str:
        """The peer's base58 ID, dialling one of its addresses first when we have no connection to it."""
        text = peer_text(peer.peer_id)
        if text in self.host.connected_peers():
            return text
        addrs = peer.addrs or self.addresses.get(peer.peer_id, ())
        errors = []
        for addr in full_addrs(addrs, text):
            try:
                await self.host.dial(addr)
                return text
            except P2PError as exc:
                errors.append(str(exc))
        raise ConnectionError(f"cannot reach {text}: {'; '.join(errors) or 'no known address'}")

    # ---- the protocol -------------------------------------------------------------------------------------

    async def send(self, peer: Contact, request: Request) -> Response:
        """One DHT request to `peer`; transport failures are `ConnectionError`, bad answers `ProtocolError`."""
        try:
            peer_id = await self.ensure_connected(peer)
            answer = await self.host.request(
                peer_id, PROTOCOL_ID, encode_message(request), self.query_timeout_s, MAX_MESSAGE_BYTES
            )
        except P2PError as exc:
            raise ConnectionError(str(exc)) from exc
        response = decode_response(answer)
        if isinstance(response, Nodes):
            for contact in (*response.closer, *response.providers):
                if contact.addrs and contact.peer_id != self.local.peer_id:
                    self.addresses.setdefault(contact.peer_id, contact.addrs)
        return response

    async def _serve(self, sender: str, data: bytes) -> bytes:
        try:
            request = decode_request(data)
            sender_id = peer_bytes(sender)
            if isinstance(request, AddProvider) and request.provider.peer_id == sender_id and request.provider.addrs:
                self.addresses[sender_id] = request.provider.addrs
            handled = self.node.handle(self.contact_of(sender_id), request, self.clock())
        except (StorageError, ValueError) as exc:
            raise RequestError(f"refused DHT request from {sender}: {exc}") from exc
        if handled.ping is not None:
            self._to_ping[handled.ping.peer_id] = handled.ping
        return encode_message(handled.response)

    async def _run(self, lookup: Lookup, key: bytes = b"") -> Lookup:
        return await run_lookup(self.node, lookup, self.send, self.clock, key)

    # ---- what the store asks of the DHT ---------------------------------------------------------------------

    async def find_providers(self, cid: CID, want: int = 20) -> list[Contact]:
        """Providers of `cid`: our own records plus a GET_PROVIDERS lookup, each peer once."""
        local, lookup = self.node.find_providers(cid, self.clock(), want)
        await self._run(lookup, provider_key(cid))
        found = {p.peer_id: p for p in (*local, *lookup.providers)}
        return list(found.values())[:want]

    def known_providers(self, cid: CID, want: int = 20) -> list[Contact]:
        """The provider records this node holds itself (ourselves included), without asking the network: in a
        network of up to k nodes every announcement reaches every node, so this is already the whole answer."""
        return self.node.providers.get(provider_key(cid), self.clock(), limit=want)

    async def provide(self, cid: CID) -> int:
        """Announce ourselves as a provider of `cid` to the k closest peers; returns how many took it."""
        key = provider_key(cid)
        lookup = await self._run(self.node.provide(cid, self.clock()))
        return await self._announce(key, lookup)

    def stop_providing(self, cid: CID) -> None:
        self.node.stop_providing(cid)

    async def _announce(self, key: bytes, lookup: Lookup) -> int:
        messages = self.node.announcements(key, lookup)
        results = await asyncio.gather(
            *(self.send(peer, message) for peer, message in messages), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, StorageError | OSError | TimeoutError):
                raise result
        return sum(1 for result in results if not isinstance(result, BaseException))

    async def maintain(self) -> None:
        """One round of upkeep: republish what is due, expire old records, refresh stale buckets, answer the
        table's pings, and keep connected peers in the table."""
        now = self.clock()
        for contact in self.live_contacts():
            self._observe(contact)
        for key, lookup in self.node.due_announcements(now):
            await self._announce(key, await self._run(lookup))
        expired = self.node.expire(now)
        if expired:
            log.debug("expired %d provider records", expired)
        for index in self.node.table.stale_buckets(now, BUCKET_REFRESH_S):
            await self._run(self.node.start_lookup(self.node.table.random_key_in_bucket(index, self._rng)))
        pings, self._to_ping = list(self._to_ping.values()), {}
        for contact in pings:
            try:
                await self.send(contact, Ping())
                self.node.table.ping_answered(contact.peer_id, self.clock())
            except (ProtocolError, OSError, TimeoutError):
                self.node.table.peer_failed(contact.peer_id, self.clock())
