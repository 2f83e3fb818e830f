"""The store's network protocols on real libp2p hosts in one process (Noise, yamux, loopback TCP): DHT provider
records across peers, fetching from the DHT's providers, a peer serving tampered blocks dropped, replica
requests honoured only by `storage` nodes, malformed requests refused without harm, and the erasure hook."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from node.api.server import OperatorAuth
from node.p2p.bridge import HostConfig, P2PHost, RequestError
from node.store.dht import peer_bytes
from node.store.service import StorageService
from primitives import codec
from storage import exchange, replica_requests
from storage.address import CID
from storage.dht import messages
from storage.dht.keyspace import Contact
from storage.dht.providers import PROVIDER_TTL, REPUBLISH_INTERVAL
from storage.errors import BlockNotFoundError
from storage.importer import CHUNK_SIZE
from storage.placement import closest_peers
from tests.harness import await_until

DATA = bytes((i * 7919 + 13) % 251 for i in range(3 * CHUNK_SIZE + 999))


async def make_node(stack: AsyncExitStack, tmp: Path, name: str, storage: bool = True) -> StorageService:
    host = P2PHost(HostConfig(seed=os.urandom(32)))
    await host.start()
    stack.push_async_callback(host.stop)
    service = StorageService(host, tmp / name, OperatorAuth("token"), takes_replicas=storage)
    await service.start()
    stack.push_async_callback(service.stop)
    return service


@pytest.fixture
async def trio_of_nodes(tmp_path: Path) -> AsyncIterator[list[StorageService]]:
    async with AsyncExitStack() as stack:
        nodes = [await make_node(stack, tmp_path, f"n{i}", storage=i != 2) for i in range(3)]
        for node in nodes[1:]:
            await node.host.dial(nodes[0].host.listen_addrs[0])  # everyone knows n0, as with one bootstrap peer
            node.dht.learn(nodes[0].dht.local)
        nodes[0].dht.learn(nodes[1].dht.local)
        yield nodes


def contact(node: StorageService) -> Contact:
    return node.dht.local


async def read_all(pieces: AsyncIterator[bytes]) -> bytes:
    return b"".join([piece async for piece in pieces])


async def test_providers_through_the_dht_and_a_fetch_from_them(trio_of_nodes: list[StorageService]) -> None:
    n0, n1, n2 = trio_of_nodes
    root = n1.objects.add_bytes(DATA)
    assert await n1.dht.provide(root) >= 1  # n0 took the record (n1 learned n0 from its table)
    found = await n2.find_providers(root)
    assert contact(n1).peer_id in {p.peer_id for p in found}
    # n2 had never heard of n1: the address came with the provider record, so it can reach it.
    # A fetch its reader abandons leaves no root behind: `has(root)` still means the whole file is here.
    pieces = n2.fetch_remote(root)
    assert len(await anext(pieces)) == CHUNK_SIZE
    await pieces.aclose()  # type: ignore[attr-defined]
    assert not n2.objects.has(root)
    assert await read_all(n2.fetch_remote(root)) == DATA
    assert n2.objects.has(root) and not n2.objects.missing(root)  # kept as a cache after the fetch
    with pytest.raises(BlockNotFoundError):
        await read_all(n0.fetch_remote(CID.of(0x55, b"nobody holds this")))


async def test_a_peer_serving_tampered_blocks_is_dropped(trio_of_nodes: list[StorageService]) -> None:
    n0, n1, n2 = trio_of_nodes
    root = n0.objects.add_bytes(DATA)
    n1.objects.add_bytes(DATA)

    async def tampering(sender: str, data: bytes) -> bytes:
        served = exchange.serve_get_blocks(exchange.decode_get_blocks(data), n1.objects.blocks.get)
        flipped = tuple(type(b)(b.cid, bytes([b.data[0] ^ 1]) + b.data[1:]) for b in served.blocks)
        return exchange.encode_blocks(exchange.Blocks(flipped, served.missing))

    n1.host.set_request_handler(exchange.PROTOCOL_ID, tampering)  # n1 now lies about every block it sends
    await n2.host.dial(n1.host.listen_addrs[0])
    data = await read_all(n2.exchange.fetch_remote(root, hints=[contact(n1), contact(n0)]))
    assert data == DATA
    assert n2.exchange.dropped == {contact(n1).peer_id}  # remembered for later fetches; n0 is fine
    # The tampered bytes never reached n2's store: every block it kept verifies.
    for cid in n2.objects.blocks.iter_cids():
        cid.verify(n2.objects.blocks.get(cid))


async def test_only_storage_nodes_take_replicas(trio_of_nodes: list[StorageService]) -> None:
    n0, n1, n2 = trio_of_nodes  # n2 lacks the storage role
    root = n0.objects.add_bytes(DATA, replication=2)
    await n0.dht.provide(root)
    assert not await n0.replicator.ask(contact(n2), root, 2)
    assert contact(n2).peer_id in n0.replicator.not_storage
    assert await n0.replicator.ask(contact(n1), root, 2)
    request, sender = await asyncio.wait_for(n1.replicator.inbound.get(), 5)
    await n1.replicator.take(request.cid, request.replication, [sender])
    assert n1.objects.blocks.get_pin(root) is not None and n1.objects.blocks.get_pin(root).replication == 2  # type: ignore[union-attr]
    assert contact(n1).peer_id in {p.peer_id for p in await n2.find_providers(root)}


async def test_repair_asks_the_closest_live_storage_peer(trio_of_nodes: list[StorageService]) -> None:
    n0, n1, n2 = trio_of_nodes
    await n0.host.dial(n2.host.listen_addrs[0])
    root = n0.objects.add_bytes(DATA, replication=2)
    await n0.dht.provide(root)
    accepted = await n0.replicator.repair(root, 2)
    # n1 is the only other storage peer: it gets the copy; n2 (no storage role) refuses if it is asked first.
    assert [p.peer_id for p in accepted] == [contact(n1).peer_id]
    n2_first = closest_peers(root, [contact(n1), contact(n2)], 1) == [contact(n2)]
    assert (contact(n2).peer_id in n0.replicator.not_storage) == n2_first


async def test_malformed_requests_are_refused_and_the_node_keeps_serving(trio_of_nodes: list[StorageService]) -> None:
    n0, n1, _ = trio_of_nodes
    target = n0.host.peer_id
    for protocol in (messages.PROTOCOL_ID, exchange.PROTOCOL_ID, replica_requests.PROTOCOL_ID):
        for junk in (b"\xff\x00", codec.encode({"type": "get_blocks", "cids": ["not bytes"]}), b""):
            with pytest.raises(RequestError):
                await n1.host.request(target, protocol, junk, timeout_s=5)
    # A peer may only announce itself as a provider.
    someone_else = messages.AddProvider(b"\x12\x20" + bytes(32), Contact(b"\x00\x24" + os.urandom(36)))
    with pytest.raises(RequestError):
        await n1.host.request(target, messages.PROTOCOL_ID, messages.encode_message(someone_else), timeout_s=5)
    answer = await n1.dht.send(contact(n0), messages.Ping())
    assert answer == messages.Ack()


async def test_erase_unpins_stops_announcing_and_reclaims(trio_of_nodes: list[StorageService]) -> None:
    n0, _, _ = trio_of_nodes
    kept = n0.objects.add_bytes(b"kept record " * 1000)
    erased = n0.objects.add_bytes(DATA)
    await n0.dht.provide(erased)
    report = n0.erase([erased, CID.of(0x55, b"never stored")])
    assert report.removed_blocks >= 4 and not n0.objects.has(erased)
    assert n0.objects.has(kept) and [p.root for p in n0.objects.pins()] == [kept]
    assert peer_bytes(n0.host.peer_id) == contact(n0).peer_id
    announced = n0.dht.node.schedule.keys()
    assert erased.multihash not in announced


async def test_background_loops_announce_and_place_replicas(trio_of_nodes: list[StorageService]) -> None:
    n0, n1, _ = trio_of_nodes
    for node in trio_of_nodes:
        node.tick_s = 0.05
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(node.run()) for node in (n0, n1)]
        root = n0.objects.add_bytes(DATA, replication=2)
        await n0.on_added(root, 2)
        await await_until(lambda: n1.objects.blocks.get_pin(root) is not None, 10, what="replica on n1")
        await await_until(lambda: n0.announced >= 1, 5, what="announcement")
        for task in tasks:
            task.cancel()
    assert not n1.objects.missing(root)


async def test_records_are_republished_on_schedule_and_expire_after_their_ttl(
    trio_of_nodes: list[StorageService],
) -> None:
    n0, n1, _ = trio_of_nodes
    now = [1_000.0]
    for node in trio_of_nodes:
        node.dht.clock = lambda: now[0]
    root = n1.objects.add_bytes(DATA)
    await n1.dht.provide(root)

    def n0_lists_n1() -> bool:
        return contact(n1).peer_id in {p.peer_id for p in n0.dht.node.providers.get(root.multihash, now[0])}

    assert n0_lists_n1()
    now[0] += REPUBLISH_INTERVAL + 1
    await n1.dht.maintain()  # due: announced again, so n0's record lives another TTL
    now[0] += PROVIDER_TTL - REPUBLISH_INTERVAL
    await n0.dht.maintain()
    assert n0_lists_n1()  # the first announcement alone would have expired by now
    n1.dht.stop_providing(root)
    now[0] += PROVIDER_TTL
    await n1.dht.maintain()  # nothing due any more
    await n0.dht.maintain()
    assert not n0_lists_n1() and len(n0.dht.node.providers) == 0


async def test_pinning_an_object_held_elsewhere_fetches_it_first(trio_of_nodes: list[StorageService]) -> None:
    n0, n1, _ = trio_of_nodes
    root = n1.objects.add_bytes(DATA)
    await n1.dht.provide(root)
    app = web.Application()
    app.add_routes(n0.routes())
    async with TestClient(TestServer(app)) as client:
        refused = await client.post(f"/pins/{root}")
        assert refused.status == 401 and not n0.objects.has(root)
        answer = await client.post(f"/pins/{root}?replication=2", headers={"Authorization": "Bearer token"})
        # n1 holds it too (it provides it, and is connected): two holders, confirmed before the answer.
        assert answer.status == 200 and await answer.json() == {"cid": str(root), "replication": 2, "holders": 2}
    assert b"".join(n0.objects.cat(root)) == DATA
    assert n0.announce_backlog == 1  # our own announcement is left to the background loop, like an add's


async def test_an_add_is_acknowledged_once_its_copies_are_held(
    trio_of_nodes: list[StorageService], monkeypatch: pytest.MonkeyPatch
) -> None:
    n0, n1, n2 = trio_of_nodes  # n2 lacks the storage role: it refuses and is not waited for
    await n0.host.dial(n2.host.listen_addrs[0])
    taking = asyncio.ensure_future(n1.replicator.run_inbound())
    try:
        root = n0.objects.add_bytes(DATA, replication=2)
        assert await n0.on_added(root, 2) == 2
        # The copy was complete and pinned on n1 before the answer: the add already survives n0's loss.
        assert n1.objects.blocks.get_pin(root) is not None and n1.objects.missing(root) == []
        lookups: list[CID] = []
        find_providers = n0.dht.find_providers

        async def counted(cid: CID, want: int = 20) -> list[Contact]:
            lookups.append(cid)
            return await find_providers(cid, want)

        monkeypatch.setattr(n0.dht, "find_providers", counted)
        single = n0.objects.add_bytes(DATA[:1000], replication=1)
        assert await n0.on_added(single, 1) == 1 and lookups == []  # r = 1 waits for nobody: no lookup either
    finally:
        taking.cancel()
        await asyncio.gather(taking, return_exceptions=True)
