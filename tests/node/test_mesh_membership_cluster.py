"""A permissioned mesh on real node processes: an outside py-libp2p peer connected to one node gets nothing onto
the consensus or transaction topic of any node, and is penalised and banned by the node it connected to; a
light client is not (it may stay connected and use request–response); a member that restarts is not banned.
docs/PROTOCOL.md §2, "Membership" and "Validation and scoring"."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from consensus.gossip_batch import ConsensusBatch
from consensus.tx import Tx
from consensus.votes import Vote, VoteKind
from node.cli.cluster import start_cluster
from node.cluster.config import generate_network
from node.cluster.local import Cluster
from node.ledger import wire
from node.p2p.bridge import HostConfig, P2PError, P2PHost
from primitives.keys import SigningKey
from tests.harness import await_until, holds_for, node_processes, wait_until

pytestmark = pytest.mark.cluster

OTHERS = ("node2", "node3", "node4")


@asynccontextmanager
async def cluster_of_four(data_dir: Path) -> AsyncIterator[Cluster]:
    cluster = await asyncio.to_thread(start_cluster, generate_network(4), data_dir, 60)
    try:
        yield cluster
    finally:
        await asyncio.to_thread(cluster.down, 5)
        for proc in node_processes():
            proc.kill()


async def status(cluster: Cluster, name: str) -> dict[str, Any]:
    found = await asyncio.to_thread(cluster.status_of, name, 3.0)
    assert found is not None, f"{name} does not answer"
    return found


def log_of(cluster: Cluster, name: str) -> str:
    return Path(cluster.records[name].log).read_text(errors="replace")


@asynccontextmanager
async def outside_peer(cluster: Cluster, target: str) -> AsyncIterator[P2PHost]:
    host = P2PHost(HostConfig(seed=os.urandom(32)))
    await host.start()
    try:
        await host.dial(cluster.network.node(target).p2p_multiaddr)
        yield host
    finally:
        await host.stop()


async def test_an_outside_peer_gets_nothing_onto_the_mesh_and_is_banned_by_the_node_it_joined(tmp_path: Path) -> None:
    async with cluster_of_four(tmp_path) as cluster, outside_peer(cluster, "node1") as outsider:
        chain_id, node1_id = cluster.network.genesis.chain_id, str(cluster.network.node("node1").peer_id)
        consensus_topic, txs_topic = wire.consensus_topic(chain_id), wire.txs_topic(chain_id)
        # It asks to join both topics, as a member would.
        await outsider.subscribe(consensus_topic)
        await outsider.subscribe(txs_topic)
        await await_until(lambda: outsider.gossip_peers(consensus_topic), 10, what="node1's subscription seen")
        head = int((await status(cluster, "node1"))["height"])
        key = SigningKey.generate()
        vote = Vote(VoteKind.PREVOTE, chain_id, head + 1, 0, None, key.public_key).signed(key)
        tx = Tx.create(key, chain_id, "record", 0, {"key": b"k", "value": b"from outside"})
        garbage = [b"\xff\x00garbage", b"\x00", os.urandom(300)]
        well_formed = [(consensus_topic, ConsensusBatch((), (vote,)).encode()), (txs_topic, wire.encode_txs([tx.raw]))]
        messages = [(topic, data) for data in garbage for topic in (consensus_topic, txs_topic)] + well_formed
        sent = 0

        async def publish_until_cut_off() -> None:
            # As a hostile peer would: garbage and well-formed messages on both topics, paced, while it can.
            nonlocal sent
            for index in range(400):
                topic, data = messages[index % len(messages)]
                try:
                    # Written straight to node1's pubsub stream, as a hostile implementation would: node1 keeps it
                    # out of its mesh (its GRAFT is pruned), so the router would never send it anything to relay.
                    if not await outsider.publish_to(topic, data, [node1_id]):
                        return
                    sent += 1
                except P2PError:
                    return
                await asyncio.sleep(0.02)  # pacing the publisher, not waiting for a condition

        # It publishes until node1 cuts it off (or 400 messages: on code without a permissioned mesh, never).
        await asyncio.wait_for(publish_until_cut_off(), 90)

        # The nodes it never connected to never saw a byte of it: no log line names it, nothing was judged.
        def no_trace_elsewhere() -> bool:
            return all(outsider.peer_id not in log_of(cluster, name) for name in OTHERS)

        assert await asyncio.to_thread(holds_for, no_trace_elsewhere, 2.0)
        for name in OTHERS:
            other = await status(cluster, name)
            assert other["malformed_messages"] == 0, name
            assert outsider.peer_id not in other["gossip"]["rejected_from"], name
            assert other["gossip"]["verdicts"]["reject"] == 0, name
        # The node it connected to rejected every message before its ledger (or any other node) got it, and
        # banned it: the connection is closed and stays refused.
        assert sent >= 10
        node1 = await status(cluster, "node1")
        assert outsider.peer_id in node1["gossip"]["banned"]
        assert node1["gossip"]["rejected_from"][outsider.peer_id] >= 10
        assert node1["malformed_messages"] == 0
        await await_until(lambda: node1_id not in outsider.connected_peers(), 10, what="node1 closing the connection")
        with contextlib.suppress(P2PError):  # the handshake may complete before node1 closes the connection
            await outsider.dial(cluster.network.node("node1").p2p_multiaddr)
        await await_until(lambda: node1_id not in outsider.connected_peers(), 10, what="the redial refused")
        # The chain goes on.
        await asyncio.to_thread(
            wait_until, lambda: int((cluster.status_of("node4") or {}).get("height", 0)) > head + 1, 30
        )


async def test_a_light_client_stays_connected_is_answered_and_polled_quietly(tmp_path: Path) -> None:
    """Gate topics, not connections: a peer that never gossips keeps its connection and its request–response,
    and the node's handshake poll of it (it does not serve the ledger protocol) neither repeats every 0.5 s nor
    logs py-libp2p's 7-line ERROR block each time."""
    async with cluster_of_four(tmp_path) as cluster, outside_peer(cluster, "node1") as light:
        node1 = cluster.network.node("node1").peer_id
        assert node1 is not None
        before = log_of(cluster, "node1").count("Failed to open stream to peer")

        def still_connected_and_quiet() -> bool:
            return node1 in light.connected_peers()

        assert await asyncio.to_thread(holds_for, still_connected_and_quiet, 4.0)
        answer = wire.PeerStatus.decode(await light.request(node1, wire.LEDGER_PROTOCOL, wire.status_request()))
        assert answer.chain_id == cluster.network.genesis.chain_id
        assert log_of(cluster, "node1").count("Failed to open stream to peer") == before
        gossip = (await status(cluster, "node1"))["gossip"]
        assert light.peer_id not in gossip["banned"] and light.peer_id not in gossip["rejected_from"]


async def test_a_member_that_restarts_is_not_banned(tmp_path: Path) -> None:
    async with cluster_of_four(tmp_path) as cluster:
        restarted = cluster.records["node3"].peer_id
        head = int((await status(cluster, "node1"))["height"])
        await asyncio.to_thread(cluster.kill, "node3")
        await asyncio.to_thread(cluster.spawn, "node3")
        await asyncio.to_thread(cluster.wait_connected, None, 60)

        def caught_up() -> bool:
            heights = [int((cluster.status_of(n) or {}).get("height", -1)) for n in ("node1", "node3")]
            return min(heights) > head + 3 and abs(heights[0] - heights[1]) <= 2

        await asyncio.to_thread(wait_until, caught_up, 90, 0.5, "node3 back in step")
        for name in ("node1", "node2", "node3", "node4"):
            gossip = (await status(cluster, name))["gossip"]
            assert gossip["banned"] == {}, (name, gossip)
            assert gossip["verdicts"]["reject"] == 0, (name, gossip)
        assert restarted is not None
