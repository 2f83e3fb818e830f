"""The content store as a node service: every full node keeps a blockstore in its data dir, serves
the store's HTTP routes, and takes part in the Kademlia DHT (`/ehrnet/kad/1.0.0`), block exchange
(`/ehrnet/blocks/1.0.0`) and replication (`/ehrnet/replicate/1.0.0`) on the node's libp2p host.

An add places its copies itself and is acknowledged once they are held (`on_added`). Background work runs in
`run()` on one task group: announcing what was added (and placing the replicas of pins found at start-up),
taking replicas others asked for, and a maintenance loop (routing table from connected peers, provider republish and
expiry, bucket refresh, and a replication check whenever a connected peer drops off).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path

from aiohttp import web

from node.api.server import OperatorAuth
from node.p2p.bridge import P2PError, P2PHost
from node.service import Service
from node.store.dht import LibP2PDht
from node.store.exchange import LibP2PBlockExchange
from node.store.http_routes import storage_routes
from node.store.replication import Replicator
from storage.address import CID
from storage.blockstore import Blockstore
from storage.dht.keyspace import Contact
from storage.errors import NotPinnedError, StorageError
from storage.objects import GcReport, ObjectStore

log = logging.getLogger(__name__)

ANNOUNCE_QUEUE = 1024


class StorageService(Service):
    name = "storage"
    tick_s = 1.0  # how often connected peers are compared, to notice a holder that went away
    maintain_every_s = 60.0  # republish / expire / bucket refresh
    check_every_s = 300.0  # replication check even without a peer loss (a holder may have dropped a pin)
    replica_wait_s = 30.0  # the longest an add waits for its copies before answering with fewer

    def __init__(
        self,
        host: P2PHost,
        directory: Path,
        auth: OperatorAuth,
        takes_replicas: bool,
        bootstrap: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.host = host
        self.auth = auth
        self.takes_replicas = takes_replicas  # the `storage` role: hold replicas for others
        # Opened here, in the composition root, so the routes below are complete before the node starts.
        self.blocks = Blockstore(directory)
        self.objects = ObjectStore(self.blocks)
        self.dht = LibP2PDht(host, list(bootstrap))
        self.exchange = LibP2PBlockExchange(host, self.objects, self.dht)
        self.replicator = Replicator(host, self.objects, self.dht, self.exchange, takes_replicas)
        # (cid, replication, place): an add places its copies itself; re-announced pins are placed from here.
        self._announce: asyncio.Queue[tuple[CID, int, bool]] = asyncio.Queue(ANNOUNCE_QUEUE)
        self.announced = 0

    async def start(self) -> None:
        self.dht.start()
        self.exchange.start()
        self.replicator.start()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._announce_pins(), name="storage:announce-pins")
            group.create_task(self._announce_loop(), name="storage:announce")
            group.create_task(self.replicator.run_inbound(), name="storage:replicas")
            group.create_task(self._maintain_loop(), name="storage:maintain")

    async def stop(self) -> None:
        self.blocks.close()

    def routes(self) -> list[web.RouteDef]:
        return storage_routes(
            self.objects,
            self.auth.require,
            fetch_remote=self.fetch_remote,
            find_providers=self.find_providers,
            on_added=self.on_added,
        )

    # ---- what the HTTP routes call ----------------------------------------------------------------------------

    async def on_added(self, cid: CID, replication: int) -> int:
        """After an upload, a pin or a filed EHR: queue our provider announcement (bounded: a flood of adds waits
        here rather than growing memory), ask for the copies at once and wait until min(r, storage nodes) live
        nodes hold the object (at most `replica_wait_s`). Returns how many hold it: the add's acknowledgement
        says whether it already survives a holder's crash. Fewer copies than asked are completed later by the
        replication check."""
        await self._announce.put((cid, replication, False))
        try:
            accepted = (
                await self.replicator.place(cid, replication) if replication > 1 or not self.takes_replicas else []
            )
            promised = [peer.peer_id for peer in accepted]
            return await self.replicator.await_holders(cid, replication, promised, self.replica_wait_s)
        except (StorageError, P2PError, OSError, TimeoutError) as exc:
            log.warning("placing copies of %s failed: %s", cid, exc)
            return 1 if self.objects.blocks.get_pin(cid) is not None else 0

    @property
    def announce_backlog(self) -> int:
        """Objects added or pinned but not yet announced by the background loop."""
        return self._announce.qsize()

    async def find_providers(self, cid: CID) -> Sequence[Contact]:
        return await self.dht.find_providers(cid)

    def fetch_remote(self, cid: CID) -> AsyncIterator[bytes]:
        return self.exchange.fetch_remote(cid)

    def erase(self, cids: Iterable[CID]) -> GcReport:
        """The erasure hook (crypto-shredding, docs/STORAGE.md §6): stop holding and announcing `cids`, then
        collect garbage so their blocks leave this node. The sharing layer calls it on the contract's erasure
        event after destroying the wrapped keys; unknown or unpinned CIDs are fine."""
        for cid in cids:
            with contextlib.suppress(NotPinnedError):
                self.objects.unpin(cid)
            self.dht.stop_providing(cid)
        return self.objects.gc()

    def status(self) -> dict[str, object]:
        used_blocks, used_bytes = self.blocks.stats()
        return {
            "storage": {
                "blocks": used_blocks,
                "bytes": used_bytes,
                "pins": len(self.objects.pins()),
                "routing_table": len(self.dht.node.table),
                "replicas_taken": self.replicator.taken,
                "announced": self.announced,
            }
        }

    # ---- background loops -----------------------------------------------------------------------------------

    async def _announce_pins(self) -> None:
        # Pins made before a restart are announced again at once (the republish schedule lives in memory).
        for pin in self.objects.pins():
            await self._announce.put((pin.root, pin.replication, True))

    async def _announce_loop(self) -> None:
        while True:
            cid, replication, place = await self._announce.get()
            try:
                await self.dht.provide(cid)
                self.announced += 1
                if place and (replication > 1 or not self.takes_replicas):
                    await self.replicator.place(cid, replication)
            except (StorageError, P2PError, OSError, TimeoutError) as exc:
                log.warning("announcing %s failed: %s", cid, exc)

    async def _maintain_loop(self) -> None:
        previous: set[str] = set()
        last_maintain = last_check = time.monotonic()
        while True:
            await asyncio.sleep(self.tick_s)
            current = set(self.host.connected_peers())
            lost = previous - current
            previous = current
            now = time.monotonic()
            try:
                if now - last_maintain >= self.maintain_every_s:
                    last_maintain = now
                    await self.dht.maintain()
                else:
                    for contact in self.dht.live_contacts():
                        self.dht.learn(contact)
                if lost or now - last_check >= self.check_every_s:
                    last_check = now
                    if lost:
                        log.info("peers gone: %s; checking replicas", ", ".join(sorted(lost)))
                    if await self.replicator.check_all():
                        last_check = now - self.check_every_s + 15.0  # verify the repair soon
            except (StorageError, P2PError, OSError, TimeoutError) as exc:
                log.warning("storage maintenance failed: %s", exc)
