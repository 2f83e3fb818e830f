"""Four store nodes in one process, wired through the real wire codecs over an in-memory transport: add on
node 1, providers found through the DHT, cat on node 4 byte-identical, replication 2 surviving a dead holder,
and a node serving bad blocks dropped. (The libp2p version of this is the lead's cluster test.)"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from storage.address import CID
from storage.blockstore import Blockstore
from storage.dht.driver import Send, run_lookup
from storage.dht.keyspace import Contact, provider_key
from storage.dht.messages import Request, Response, decode_request, decode_response, encode_message
from storage.dht.node import DhtNode
from storage.exchange import (
    Blocks,
    GetBlocks,
    decode_blocks,
    decode_get_blocks,
    encode_blocks,
    encode_get_blocks,
    serve_get_blocks,
)
from storage.fetch import BlockFetcher, RequestBlocks
from storage.importer import CHUNK_SIZE, Block
from storage.objects import ObjectStore
from storage.placement import plan_replication


@dataclass
class Node:
    contact: Contact
    dht: DhtNode
    objects: ObjectStore
    alive: bool = True
    evil: bool = False


class Network:
    def __init__(self, tmp: Path, count: int) -> None:
        self.clock = itertools.count()
        self.nodes: dict[bytes, Node] = {}
        for i in range(count):
            contact = Contact(f"node-{i}".encode(), (f"/ip4/127.0.0.1/tcp/{7000 + i}",))
            self.nodes[contact.peer_id] = Node(contact, DhtNode(contact), ObjectStore(Blockstore(tmp / str(i))))
        for node in self.nodes.values():  # everyone bootstraps from everyone (a 4-node cluster config)
            for other in self.nodes.values():
                node.dht.table.observe(other.contact, 0.0)

    def now(self) -> float:
        return float(next(self.clock))

    def _reach(self, peer: Contact) -> Node:
        node = self.nodes[peer.peer_id]
        if not node.alive:
            raise ConnectionRefusedError(f"{peer.peer_id!r} is down")
        return node

    def dht_sender(self, me: Node) -> Send:
        async def send(peer: Contact, request: Request) -> Response:
            handled = self._reach(peer).dht.handle(me.contact, decode_request(encode_message(request)), self.now())
            return decode_response(encode_message(handled.response))

        return send

    def block_requester(self) -> RequestBlocks:
        async def request(peer: Contact, ask: GetBlocks) -> Blocks:
            node = self._reach(peer)
            served = serve_get_blocks(decode_get_blocks(encode_get_blocks(ask)), node.objects.blocks.get)
            if node.evil:
                served = Blocks(tuple(Block(b.cid, b"\x00" + b.data) for b in served.blocks))
            return decode_blocks(encode_blocks(served))

        return request

    async def provide(self, node: Node, cid: CID) -> None:
        lookup = await run_lookup(node.dht, node.dht.provide(cid, self.now()), self.dht_sender(node), self.now)
        for peer, message in node.dht.announcements(provider_key(cid), lookup):
            await self.dht_sender(node)(peer, message)

    async def providers(self, node: Node, cid: CID) -> list[Contact]:
        _, lookup = node.dht.find_providers(cid, self.now())
        await run_lookup(node.dht, lookup, self.dht_sender(node), self.now, provider_key(cid))
        return lookup.providers

    async def fetch(self, node: Node, cid: CID, providers: list[Contact]) -> bytes:
        async def keep(blocks: list[Block]) -> None:
            node.objects.blocks.put_many(blocks)

        fetcher = BlockFetcher(self.block_requester(), sink=keep)
        return b"".join([piece async for piece in fetcher.cat(cid, providers)])


DATA = bytes((i * 7919) % 251 for i in range(5 * CHUNK_SIZE + 321))


async def test_add_on_one_cat_on_four_and_survive_a_dead_holder(tmp_path: Path) -> None:
    net = Network(tmp_path, 4)
    n1, n2, n3, n4 = net.nodes.values()
    root = n1.objects.add_bytes(DATA, replication=2)
    await net.provide(n1, root)

    found = await net.providers(n4, root)
    assert n1.contact in found
    assert await net.fetch(n4, root, found) == DATA

    # Replication factor 2: the planner names one more holder; it fetches, pins and announces.
    live = [n.contact for n in net.nodes.values() if n.alive]
    plan = plan_replication(root, 2, holders=[n1.contact.peer_id], live_peers=live)
    assert len(plan.must_take) == 1
    replica = net.nodes[plan.must_take[0].peer_id]
    if not replica.objects.has(root):
        assert await net.fetch(replica, root, [n1.contact]) == DATA
    replica.objects.pin(root, 2)
    await net.provide(replica, root)

    n1.alive = False
    reader = next(n for n in (n2, n3, n4) if n is not replica)
    reader.objects.blocks.delete_many(list(reader.objects.blocks.iter_cids()))
    found = await net.providers(reader, root)
    assert replica.contact in found
    assert await net.fetch(reader, root, found) == DATA
    assert not plan_replication(root, 2, [n1.contact.peer_id, replica.contact.peer_id], live[1:]).healthy


async def test_a_node_serving_bad_blocks_is_dropped(tmp_path: Path) -> None:
    net = Network(tmp_path, 4)
    n1, n2, _, n4 = net.nodes.values()
    root = n1.objects.add_bytes(DATA)
    n2.objects.add_bytes(DATA)
    n2.evil = True
    fetcher = BlockFetcher(net.block_requester())
    data = b"".join([piece async for piece in fetcher.cat(root, [n2.contact, n1.contact])])
    assert data == DATA and fetcher.scores.banned(n2.contact.peer_id)
    assert n4.objects.blocks.stats() == (0, 0)
