"""One light-client session for the sharing commands: the identity, a verified follower, the contract's
proof-verified storage, and an `EhrUser` that sends signed calls through a node's HTTP API.

The follower reads headers and proofs over the nodes' HTTP APIs (`/light/...`) and the user's calls go through
the node client's standard-library transport (node/client/stdlib.py), so commands that need no libp2p (records,
grant, revoke, audit) import neither libp2p nor aiohttp and the process stays small; `libp2p_host` starts a peer
only for the commands that speak to the EHRs manager or an edge node.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from node.client import AsyncNodeClient
from node.client.stdlib import ThreadedTransport
from node.cluster.config import ConfigError, NetworkConfig, load_network
from node.ehr.sharing_client import EhrUser
from node.light import identity
from node.light.args import UsageError
from node.light.client import default_nodes, genesis_from_network, is_http, open_follower
from node.light.ehr_state import EhrState
from node.light.follower import Follower
from primitives.keys import SigningKey

if TYPE_CHECKING:
    from node.p2p.bridge import P2PHost


@dataclass
class LightSession:
    network: NetworkConfig
    ident: identity.LightIdentity
    follower: Follower
    state: EhrState
    user: EhrUser

    async def my_uid(self) -> bytes:
        """This identity's user id, proof-verified (NotRegisteredError when the admin has not added it)."""
        return await self.state.uid_of(self.user.pk)


def load_network_checked(path: Path) -> NetworkConfig:
    network = load_network(path)
    if not network.resolved:
        raise ConfigError(f"{network.source}: node addresses are not resolved; use the cluster's network.toml")
    return network


def role_multiaddr(network: NetworkConfig, role: str, given: str | None, option: str) -> str:
    """The libp2p address of the node serving `role` (given explicitly, or the config's first such node)."""
    if given:
        if not given.startswith("/") or "/p2p/" not in given:
            raise UsageError(f"{option} {given!r}: expected a /ip4/.../tcp/.../p2p/<peer id> multiaddr")
        return given
    for node in network.nodes:
        if role in node.roles:
            return node.p2p_multiaddr
    raise UsageError(f"{option}: the config names no node with role {role!r}; give {option} MULTIADDR")


def peer_of(multiaddr: str) -> str:
    return multiaddr.rsplit("/p2p/", 1)[1]


@contextlib.asynccontextmanager
async def open_session(
    config: Path, data_dir: Path, identity_dir: Path | None, nodes: list[str], timeout_s: float
) -> AsyncIterator[LightSession]:
    """Load the network and identity, follow the chain to the head (every header verified), and yield a session;
    signed calls go to the first node of `nodes` (default: every node of the config, over HTTP)."""
    network = load_network_checked(config)
    ident = identity.load(identity_dir or data_dir)
    for node in nodes:
        if not is_http(node):
            raise UsageError(f"--node {node!r}: expected a node's http:// URL")
    urls = nodes or default_nodes(network, http=True)
    genesis = genesis_from_network(network)
    async with open_follower(genesis, urls, data_dir, timeout_s) as follower:
        await follower.sync()
        async with AsyncNodeClient(ThreadedTransport(urls[0], timeout_s=max(timeout_s, 30.0))) as api:
            user = EhrUser(ident.signing, api, genesis.chain_id, enc_private=bytes(ident.box))
            yield LightSession(network, ident, follower, EhrState(follower), user)


@contextlib.asynccontextmanager
async def libp2p_host(dial: list[str]) -> AsyncIterator[P2PHost]:
    """A libp2p peer with a fresh identity (unlinkable to the ledger address; node/light/identity.py) that has
    dialled each of `dial`; request–response only."""
    from node.p2p.bridge import HostConfig, P2PHost

    host = P2PHost(HostConfig(seed=SigningKey.generate().seed))
    await host.start()
    try:
        for addr in dial:
            await host.dial(addr)
        yield host
    finally:
        await host.stop()
