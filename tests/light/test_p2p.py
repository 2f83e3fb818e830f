"""The light protocol over real libp2p hosts in one process (loopback TCP, Noise, yamux): a full node's
LightServer and a device's P2PSource, without a node process."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from consensus.chainstore import ChainStore
from node.ledger.light_server import LightServer
from node.light import wire
from node.light.client import open_follower
from node.light.errors import RemoteError
from node.p2p.bridge import HostConfig, P2PHost
from primitives import codec
from tests.light.helpers import NEW_SET, RECORD_KEY, build_chain, store_of


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ChainStore]:
    s = store_of(build_chain(blocks=6, set_change_at=2), tmp_path / "chain")
    yield s
    s.close()


@pytest.fixture
async def full_node(store: ChainStore) -> AsyncIterator[tuple[P2PHost, str]]:
    host = P2PHost(HostConfig(seed=os.urandom(32)))
    await host.start()
    try:
        await LightServer(host, store).start()
        yield host, f"{host.listen_addrs[0]}/p2p/{host.peer_id}"
    finally:
        await host.stop()


async def test_a_device_follows_and_reads_over_libp2p(
    store: ChainStore, full_node: tuple[P2PHost, str], tmp_path: Path
) -> None:
    _, addr = full_node
    async with open_follower(store.genesis, [addr], tmp_path / "device") as follower:
        assert await follower.sync() == 6
        assert follower.header == store.head and follower.client.validators == NEW_SET
        got = await follower.get_state(RECORD_KEY)
        assert got.value == b"v6" and got.source == addr


async def test_bad_and_oversized_requests_get_typed_refusals(full_node: tuple[P2PHost, str]) -> None:
    _, addr = full_node
    device = P2PHost(HostConfig(seed=os.urandom(32)))
    await device.start()
    try:
        peer = await device.dial(addr)
        junk = await device.request(peer, wire.LIGHT_PROTOCOL, b"\xff\x00junk")
        with pytest.raises(RemoteError) as err:
            wire.decode_head(junk)
        assert err.value.code == "bad_request"
        big = codec.encode({"type": "proof", "key": b"k" * (wire.MAX_REQUEST_BYTES + 10)})
        with pytest.raises(RemoteError) as err:
            wire.decode_state(await device.request(peer, wire.LIGHT_PROTOCOL, big))
        assert err.value.code == "too_large"
        # The node still answers after both.
        head = wire.decode_head(await device.request(peer, wire.LIGHT_PROTOCOL, wire.head_request().encode()))
        assert head.header.height == 6
    finally:
        await device.stop()
