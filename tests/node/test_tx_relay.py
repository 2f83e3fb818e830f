"""Tx batches delivered once per node (node/ledger/gossip/tx_relay.py): the single-hop txs topic on real hosts, the
relay to peers a batch names as not reached, and the `reached` field on the wire."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest

from node.ledger import wire
from node.ledger.gossip.tx_relay import relay_targets, send_batch
from node.p2p.bridge import HostConfig, P2PHost, Subscription
from node.p2p.types import GossipMessage, TopicGuard, Verdict
from primitives import codec
from tests.harness import await_until

TOPIC = "/t/txs"


def _accept(message: GossipMessage) -> Verdict:
    return Verdict.ACCEPT


def _received(host: P2PHost) -> int:
    messages = host.gossip_status()["messages"]
    assert isinstance(messages, dict)
    return int(messages[TOPIC]["received"])


async def _hosts(count: int) -> list[P2PHost]:
    hosts = [P2PHost(HostConfig(seed=os.urandom(32))) for _ in range(count)]
    for host in hosts:
        host.guard_topic(TOPIC, TopicGuard(lambda peer: True, _accept, single_hop=True))
        await host.start()
    return hosts


@pytest.fixture
async def triangle() -> AsyncIterator[list[P2PHost]]:
    hosts = await _hosts(3)
    try:
        await hosts[1].dial(hosts[0].listen_addrs[0])
        await hosts[2].dial(hosts[0].listen_addrs[0])
        await hosts[2].dial(hosts[1].listen_addrs[0])
        yield hosts
    finally:
        for host in reversed(hosts):
            await host.stop()


@pytest.fixture
async def line() -> AsyncIterator[list[P2PHost]]:
    hosts = await _hosts(3)  # 0 - 1 - 2: the ends are not connected
    try:
        await hosts[1].dial(hosts[0].listen_addrs[0])
        await hosts[2].dial(hosts[1].listen_addrs[0])
        yield hosts
    finally:
        for host in reversed(hosts):
            await host.stop()


async def _next(sub: Subscription, within_s: float) -> GossipMessage | None:
    async def first() -> GossipMessage | None:
        async for message in sub:
            return message
        return None

    try:
        return await asyncio.wait_for(first(), within_s)
    except TimeoutError:
        return None


def test_relay_targets_are_the_topic_peers_a_batch_has_not_reached() -> None:
    peers = ["a", "b", "c", "d"]
    assert relay_targets(peers, frozenset({"a", "b"}), own="b", origin="a") == ["c", "d"]
    assert relay_targets(peers, frozenset({"a", "b", "c", "d"}), own="b", origin="a") == []
    assert relay_targets(peers, frozenset(), own="a") == ["b", "c", "d"]  # a publisher reaches every peer
    assert relay_targets(peers, frozenset(), own="b", origin="c") == ["a", "d"]  # an old-style batch: no names


def test_a_batch_names_the_peers_it_reached_and_old_batches_still_decode() -> None:
    raws = [b"\x01", b"\x02\x03"]
    assert wire.decode_tx_batch(wire.encode_txs(raws, ["p2", "p1", "p2"])) == (raws, frozenset({"p1", "p2"}))
    assert wire.decode_tx_batch(wire.encode_txs(raws)) == (raws, frozenset())
    assert wire.decode_txs(wire.encode_txs(raws, ["p1"])) == raws
    txs: list[codec.Value] = list(raws)
    too_many: list[codec.Value] = ["p"] * (wire.MAX_REACHED + 1)
    bad_reached: list[codec.Value] = ["p1", [b"p1"], [""], too_many]
    for reached in bad_reached:
        with pytest.raises(wire.WireError, match="reached"):
            wire.decode_tx_batch(codec.encode({"txs": txs, "reached": reached}))


async def test_with_every_peer_connected_each_node_receives_a_batch_once(triangle: list[P2PHost]) -> None:
    a, b, c = triangle
    sub_b, sub_c = await b.subscribe(TOPIC), await c.subscribe(TOPIC)
    await a.subscribe(TOPIC)
    await await_until(lambda: set(a.gossip_peers(TOPIC)) == {b.peer_id, c.peer_id}, timeout_s=10)
    await await_until(lambda: len(b.gossip_peers(TOPIC)) == 2 and len(c.gossip_peers(TOPIC)) == 2, timeout_s=10)

    for n in range(5):
        assert await send_batch(a, TOPIC, [b"tx%d" % n]) == 2
        for sub, host in ((sub_b, b), (sub_c, c)):
            message = await _next(sub, 5)
            assert message is not None and message.origin == a.peer_id
            raws, reached = wire.decode_tx_batch(message.data)
            assert raws == [b"tx%d" % n] and reached == {a.peer_id, b.peer_id, c.peer_id}
            # A receiver relays to no one: every topic peer is named as reached.
            assert relay_targets(host.gossip_peers(TOPIC), reached, host.peer_id, message.origin) == []
    await asyncio.sleep(0.5)  # let any forwarded copy arrive: the router must not have sent one
    assert (_received(b), _received(c)) == (5, 5)
    assert await _next(sub_b, 0.2) is None and await _next(sub_c, 0.2) is None


async def test_a_peer_the_publisher_cannot_reach_gets_the_batch_through_a_relay(line: list[P2PHost]) -> None:
    a, b, c = line
    sub_b, sub_c = await b.subscribe(TOPIC), await c.subscribe(TOPIC)
    await a.subscribe(TOPIC)
    await await_until(lambda: set(b.gossip_peers(TOPIC)) == {a.peer_id, c.peer_id}, timeout_s=10)
    await await_until(lambda: a.gossip_peers(TOPIC) == [b.peer_id], timeout_s=10)

    assert await send_batch(a, TOPIC, [b"tx"]) == 1
    at_b = await _next(sub_b, 5)
    assert at_b is not None
    raws, reached = wire.decode_tx_batch(at_b.data)
    assert await _next(sub_c, 1.0) is None  # the router does not forward a single-hop topic
    # What the ledger's reader does with a batch it admitted: on to the peers not named in it.
    assert await send_batch(b, TOPIC, raws, reached, origin=at_b.origin) == 1
    at_c = await _next(sub_c, 5)
    assert at_c is not None and at_c.origin == b.peer_id
    assert wire.decode_tx_batch(at_c.data) == ([b"tx"], frozenset({a.peer_id, b.peer_id, c.peer_id}))
