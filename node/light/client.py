"""Putting a light client together: the trusted genesis from a network config, the full nodes to ask, and a
libp2p host only when some node is given by multiaddr.

The genesis comes from the config (node/cluster/config.py: genesis_of, the same function the nodes use), not from the
node's composition root, which would pull the server side (consensus machine, aiohttp server) into a device's
process.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from consensus.genesis import Genesis
from node.cluster.config import ConfigError, NetworkConfig, genesis_of
from node.light.errors import LightError
from node.light.follower import Follower
from node.light.sources import HttpSource, P2PSource, Source
from node.light.trust import TrustStore
from primitives.keys import SigningKey


def genesis_from_network(network: NetworkConfig) -> Genesis:
    return genesis_of(network)


def default_nodes(network: NetworkConfig, http: bool) -> list[str]:
    """Every node of the network, by multiaddr (libp2p) or by HTTP URL."""
    if not network.resolved:
        raise ConfigError(f"{network.source}: node addresses are not resolved; give --node or use network.toml")
    return [n.http_url if http else n.p2p_multiaddr for n in network.nodes]


def is_http(node: str) -> bool:
    return node.startswith(("http://", "https://"))


@contextlib.asynccontextmanager
async def open_follower(
    genesis: Genesis, nodes: list[str], data_dir: Path, timeout_s: float = 10.0
) -> AsyncIterator[Follower]:
    """A follower resuming from `data_dir` (or from genesis) over the given nodes; a libp2p host is started
    only if a node is a multiaddr, and always stopped on exit."""
    if not nodes:
        raise LightError("no full node to ask: give --node or a config with nodes")
    for node in nodes:
        if not (is_http(node) or node.startswith("/")):
            raise LightError(f"--node {node!r}: an http:// URL or a /ip4/.../p2p/<peer id> multiaddr")
    trust = TrustStore(data_dir, genesis)
    client = trust.open_client()
    host = None
    if not all(is_http(n) for n in nodes):
        from node.p2p.bridge import HostConfig, P2PHost

        # A fresh peer identity per session: full nodes cannot link a device's sessions or its ledger address.
        host = P2PHost(HostConfig(seed=SigningKey.generate().seed))
        await host.start()
    try:
        sources: list[Source] = []
        for node in nodes:
            if is_http(node):
                sources.append(HttpSource(node, timeout_s))
            else:
                assert host is not None
                sources.append(P2PSource(host, node, timeout_s))
        yield Follower(client, sources, trust)
    finally:
        if host is not None:
            await host.stop()
