"""The content store as a node service (issue 5): every full node keeps a blockstore in its data dir and serves
the store's HTTP routes. Networking (the Kademlia DHT on `/ehrnet/kad/1.0.0`, block exchange, replication) is
attached here too, as handlers of named protocols on the node's libp2p host.
"""

from __future__ import annotations

import logging
from pathlib import Path

from aiohttp import web

from node.api import OperatorAuth
from node.p2p import P2PHost
from node.service import Service
from storage.blockstore import Blockstore
from storage.http import storage_routes
from storage.objects import ObjectStore

log = logging.getLogger(__name__)


class StorageService(Service):
    name = "storage"

    def __init__(self, host: P2PHost, directory: Path, auth: OperatorAuth, takes_replicas: bool) -> None:
        self.host = host
        self.auth = auth
        self.takes_replicas = takes_replicas  # the `storage` role: hold replicas for others
        # Opened here, in the composition root, so the routes below are complete before the node starts.
        self.blocks = Blockstore(directory)
        self.objects = ObjectStore(self.blocks)

    async def stop(self) -> None:
        self.blocks.close()

    def routes(self) -> list[web.RouteDef]:
        return storage_routes(self.objects, self.auth.require)
