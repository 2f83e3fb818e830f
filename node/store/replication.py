"""Replication on the node: place an object's copies, restore them when a holder disappears, and take copies
other nodes ask us to hold (docs/STORAGE.md §5).

Placement: an object pinned with factor r belongs on the r peers with the `storage` role closest to its CID
(XOR metric of the DHT). The node that added it keeps its own pin as the origin and asks the others among those
r to replicate, then waits (`await_holders`) until the copies are announced, so that an acknowledged add already
survives the crash of its origin. Repair: when a connected peer drops off (or on the periodic check), every
local pin with r > 1 is checked — its holders are the providers the DHT names that are still connected, and
`plan_replication` picks the closest live non-holders to ask. A peer that refuses because it lacks the `storage` role is
remembered and skipped. Receiving: a `storage` node accepts at once, queues the work, then fetches every block
(verified), pins with the same factor and announces itself as a provider.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from node.p2p.bridge import P2PError, P2PHost, RequestError
from node.store.dht import LibP2PDht, peer_bytes, peer_text
from node.store.exchange import LibP2PBlockExchange
from storage.address import CID
from storage.dht.keyspace import Contact
from storage.errors import StorageError
from storage.objects import ObjectStore
from storage.placement import closest_peers, plan_replication
from storage.replica_requests import (
    MAX_MESSAGE_BYTES,
    PROTOCOL_ID,
    Accepted,
    Refused,
    Replicate,
    decode_answer,
    decode_replicate,
    encode_answer,
    encode_replicate,
)

log = logging.getLogger(__name__)

NOT_STORAGE = "not a storage node"
LOOKUP_EVERY_S = 1.0  # while an add waits for its copies: how often the DHT is asked, beside our own records
INBOUND_QUEUE = 256


class Replicator:
    def __init__(
        self,
        host: P2PHost,
        objects: ObjectStore,
        dht: LibP2PDht,
        exchange: LibP2PBlockExchange,
        takes_replicas: bool,
    ) -> None:
        self.host = host
        self.objects = objects
        self.dht = dht
        self.exchange = exchange
        self.takes_replicas = takes_replicas
        self.not_storage: set[bytes] = set()  # peers that refused for lack of the role
        self.inbound: asyncio.Queue[tuple[Replicate, Contact]] = asyncio.Queue(INBOUND_QUEUE)
        self.taken = 0  # replicas this node fetched and pinned for others

    def start(self) -> None:
        self.host.set_request_handler(PROTOCOL_ID, self._serve, max_request_bytes=MAX_MESSAGE_BYTES)

    # ---- receiving ----------------------------------------------------------------------------------------

    async def _serve(self, sender: str, data: bytes) -> bytes:
        try:
            request = decode_replicate(data)
        except StorageError as exc:
            raise RequestError(f"refused replicate request from {sender}: {exc}") from exc
        if not self.takes_replicas:
            return encode_answer(Refused(NOT_STORAGE))
        pin = self.objects.blocks.get_pin(request.cid)
        if pin is not None and pin.replication >= request.replication:
            return encode_answer(Accepted())
        try:
            self.inbound.put_nowait((request, self.dht.contact_of(peer_bytes(sender))))
        except asyncio.QueueFull:
            return encode_answer(Refused("busy: too many replicas queued"))
        return encode_answer(Accepted())

    async def run_inbound(self) -> None:
        """Take queued replicas one at a time (a background loop of the storage service)."""
        while True:
            request, sender = await self.inbound.get()
            try:
                await self.take(request.cid, request.replication, [sender])
            except (StorageError, P2PError, OSError, TimeoutError) as exc:
                log.warning("replica of %s not taken: %s", request.cid, exc)

    async def take(self, cid: CID, replication: int, hints: list[Contact]) -> None:
        await self.exchange.fetch_all(cid, hints)
        self.objects.pin(cid, replication)  # no await since the fetch ended: no GC in between
        self.taken += 1
        await self.dht.provide(cid)
        log.info("holding a replica of %s (r=%d)", cid, replication)

    # ---- placing and repairing ------------------------------------------------------------------------------

    def _candidates(self) -> list[Contact]:
        """Live peers that may hold replicas: connected ones not known to lack the role, and ourselves."""
        live = [c for c in self.dht.live_contacts() if c.peer_id not in self.not_storage]
        return [*live, self.dht.local] if self.takes_replicas else live

    async def ask(self, peer: Contact, cid: CID, replication: int) -> bool:
        """Ask `peer` to hold a copy; True if it accepted."""
        try:
            peer_id = await self.dht.ensure_connected(peer)
            data = await self.host.request(peer_id, PROTOCOL_ID, encode_replicate(Replicate(cid, replication)), 10.0)
            answer = decode_answer(data)
        except (P2PError, StorageError, OSError) as exc:
            log.info("replicate %s on %s failed: %s", cid, peer_text(peer.peer_id), exc)
            return False
        if isinstance(answer, Refused):
            if answer.reason == NOT_STORAGE:
                self.not_storage.add(peer.peer_id)
            log.info("%s refused to replicate %s: %s", peer_text(peer.peer_id), cid, answer.reason)
            return False
        return True

    async def place(self, cid: CID, replication: int) -> list[Contact]:
        """Initial placement after an add: ask the r closest storage peers (other than us) to hold a copy;
        refusals fall through to a repair round. Returns the peers that accepted."""
        targets = closest_peers(cid, self._candidates(), replication)
        me = self.dht.local.peer_id
        accepted = [peer for peer in targets if peer.peer_id != me and await self.ask(peer, cid, replication)]
        if len(accepted) < len([t for t in targets if t.peer_id != me]):
            accepted += await self.repair(cid, replication, extra_holders=[p.peer_id for p in accepted])
        return accepted

    async def repair(self, cid: CID, replication: int, extra_holders: list[bytes] | None = None) -> list[Contact]:
        """Ask the closest live non-holders to take a copy while fewer than r live holders remain."""
        providers = await self.dht.find_providers(cid, want=64)
        holders = {p.peer_id for p in providers} | set(extra_holders or ())
        if self.objects.blocks.get_pin(cid) is not None:
            holders.add(self.dht.local.peer_id)
        accepted: list[Contact] = []
        for _ in range(4):  # each round may discover peers without the role; a few rounds settle it
            plan = plan_replication(cid, replication, holders, self._candidates())
            if plan.healthy:
                break
            for peer in plan.must_take:
                holders.add(peer.peer_id)  # do not ask it again this time, whatever it answers
                if await self.ask(peer, cid, replication):
                    accepted.append(peer)
        return accepted

    async def live_holders(self, cid: CID, lookup: bool = True) -> set[bytes]:
        """Peers holding `cid` now: providers we are connected to, and ourselves if pinned; the providers come
        from a DHT lookup, or only from our own records with `lookup=False`. A replica announces itself only
        after its fetch is complete and pinned, so each of them can serve it."""
        providers = await self.dht.find_providers(cid, want=64) if lookup else self.dht.known_providers(cid, 64)
        connected = {peer_bytes(text) for text in self.host.connected_peers()}
        holders = {p.peer_id for p in providers if p.peer_id in connected}
        if self.objects.blocks.get_pin(cid) is not None:
            holders.add(self.dht.local.peer_id)
        return holders

    async def await_holders(
        self, cid: CID, replication: int, promised: Iterable[bytes], timeout_s: float, poll_s: float = 0.05
    ) -> int:
        """Wait until min(r, copies we can expect) live nodes hold `cid`, at most `timeout_s`; returns how many
        hold it. The copies we can expect are ours (if pinned) and those of the `promised` peers that accepted
        in `place`: a peer that refused, or is no node at all (a device connected to us), is not waited for, so
        a one-node network answers at once. Our own provider records are polled every `poll_s` (a replica's
        announcement reaches us directly in a network of up to k nodes); a DHT lookup, for larger networks,
        every `LOOKUP_EVERY_S`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        expected = set(promised)
        if self.objects.blocks.get_pin(cid) is not None:
            expected.add(self.dht.local.peer_id)
            if replication <= 1:
                return 1  # nobody else to wait for: no DHT lookup on the add path
        # Nobody promised a copy (those asked refused, or already held one): ask the DHT at once who holds it.
        next_lookup = loop.time() + (LOOKUP_EVERY_S if expected - {self.dht.local.peer_id} else 0.0)
        while True:
            lookup = loop.time() >= next_lookup
            if lookup:
                next_lookup = loop.time() + LOOKUP_EVERY_S
            holders = await self.live_holders(cid, lookup)
            if len(holders) >= min(replication, len(expected | holders)) or loop.time() >= deadline:
                return len(holders)
            await asyncio.sleep(poll_s)

    async def check_all(self) -> int:
        """Repair every local pin with r > 1; returns how many copies were requested."""
        requested = 0
        for pin in self.objects.pins():
            if pin.replication > 1:
                try:
                    requested += len(await self.repair(pin.root, pin.replication))
                except (StorageError, P2PError, OSError, TimeoutError) as exc:
                    log.warning("replication check of %s failed: %s", pin.root, exc)
        return requested
