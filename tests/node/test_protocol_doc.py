"""docs/PROTOCOL.md against the code and real nodes: every gossip topic in the topics table, every stream protocol
a node serves in the protocols table with the roles that serve it, and one DHT query timeout everywhere."""

from __future__ import annotations

import asyncio
import inspect
import re
from pathlib import Path

import pytest

from node.cluster.local import Cluster
from node.ledger.wire import consensus_topic, txs_topic
from node.p2p.bridge import HostConfig, P2PHost
from node.p2p.probe import PROBE_TOPIC
from node.store.dht import LibP2PDht
from primitives.keys import SigningKey
from storage.dht.lookup import QUERY_TIMEOUT
from tests.harness import await_until, running_cluster

DOCS = Path(__file__).resolve().parents[2] / "docs"
PROTOCOL_MD = (DOCS / "PROTOCOL.md").read_text()


def _table_after(heading: str) -> list[list[str]]:
    """The rows of the first table after `heading`, cells stripped of backticks."""
    text = PROTOCOL_MD[PROTOCOL_MD.index(heading) :]
    rows = []
    for line in text.splitlines():
        if line.startswith("|---"):
            continue
        if line.startswith("|"):
            rows.append([cell.strip().strip("`") for cell in line.strip("|").split("|")])
        elif rows:
            break
    return rows[1:]


def documented_protocols() -> dict[str, str]:
    return {row[0]: row[1] for row in _table_after("### Stream protocols and who serves them")}


def test_every_gossip_topic_is_in_the_topics_table() -> None:
    topics = {row[0] for row in _table_after("### Topics")}
    assert {PROBE_TOPIC, txs_topic("<chain_id>"), consensus_topic("<chain_id>")} <= topics


def test_one_dht_query_timeout_in_the_code_and_both_documents() -> None:
    default = inspect.signature(LibP2PDht.__init__).parameters["query_timeout_s"].default
    assert default == QUERY_TIMEOUT
    storage_md = (DOCS / "STORAGE.md").read_text()
    stated = re.findall(r"query timeout (\d+(?:\.\d+)?) s", PROTOCOL_MD + storage_md)
    assert len(stated) >= 2 and {float(s) for s in stated} == {QUERY_TIMEOUT}


@pytest.mark.cluster
def test_the_protocols_table_lists_what_each_role_serves(tmp_path: Path) -> None:
    """A fresh client host dials every node of a 4-node cluster (node1 the manager, node4 the edge node) and
    reads the protocols each lists in its identify answer."""

    async def served(cluster: Cluster) -> tuple[dict[str, set[str]], set[str]]:
        from libp2p.peer.id import ID

        host = P2PHost(HostConfig(seed=SigningKey.generate().seed))
        await host.start()
        try:
            found = {}
            for name, record in cluster.records.items():
                await host.dial(record.multiaddr)
                peer = ID.from_base58(record.peer_id)

                async def listed(peer: ID = peer) -> list[str]:
                    async def read() -> list[str]:
                        return [str(p) for p in host._host.get_peerstore().get_protocols(peer)]

                    return await host._call(read)

                found[name] = set(await await_until(listed, 20, what=f"{name}'s identify answer"))

            async def own() -> list[str]:
                return [str(p) for p in host._host.get_mux().get_protocols()]

            return found, set(await host._call(own))
        finally:
            await host.stop()

    with running_cluster(tmp_path / "c", n=4) as cluster:
        nodes, client = asyncio.run(served(cluster))
    documented = documented_protocols()
    every_node = {p for p, who in documented.items() if who.startswith("every node")}
    assert client == {p for p, who in documented.items() if "every client host" in who}
    roles = {name: set(cluster.network.node(name).roles) for name in nodes}
    for name, protocols in nodes.items():
        by_role = {p for p, who in documented.items() if who in roles[name]}
        assert protocols == every_node | by_role, name
