"""Composition root: `build_node` wires a full peer from a resolved network config.

Each subsystem is a service that receives its collaborators in its constructor and attaches to the network as
handlers of named protocols and topics (CometBFT's reactors), so the p2p layer knows nothing of what it carries.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from aiohttp import web

from node import __version__
from node.api.contracts import contract_routes
from node.api.ledger import ledger_routes
from node.api.openapi import describe
from node.api.server import SMALL_BODY, HttpApiService, OperatorAuth, json_error, read_json
from node.cluster.config import ConfigError, NetworkConfig, NodeSpec, genesis_of
from node.ehr.erasure import ErasureWatcher, OnErasure
from node.ehr.manager import ManagerService
from node.faults.byzantine import ByzantineHost, byzantine_parts
from node.faults.control import FaultControl
from node.faults.options import FaultOptions
from node.ledger.light_server import LightServer
from node.ledger.service import LedgerService
from node.p2p.bridge import HostConfig, P2PError, P2PHost
from node.p2p.identity import public_key_of_peer_id
from node.p2p.peering import BootstrapPeer, PeeringService
from node.p2p.probe import ProbeService
from node.service import Service, run_services
from node.store.service import StorageService
from node.views.service import ViewService
from primitives.keys import SigningKey
from storage.address import CID
from storage.errors import StorageError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NodePaths:
    """Where a node keeps its state: everything under one directory, so a node is restartable and movable."""

    root: Path

    @property
    def key(self) -> Path:
        return self.root / "node.key"

    @property
    def token(self) -> Path:
        return self.root / "api.token"

    @property
    def log(self) -> Path:
        return self.root / "node.log"


class Node:
    def __init__(
        self,
        network: NetworkConfig,
        spec: NodeSpec,
        paths: NodePaths,
        key: SigningKey,
        peering: PeeringService,
        http: HttpApiService,
        auth: OperatorAuth,
        services: list[Service],
    ) -> None:
        self.network = network
        self.spec = spec
        self.paths = paths
        self.key = key
        self.peering = peering
        self.http = http
        self.auth = auth
        self.services = services
        self.stop_event = asyncio.Event()
        self.status_sections: list[Callable[[], dict[str, object]]] = []
        self.started_at = time.time()

    def status(self) -> dict[str, object]:
        host = self.peering.host
        status: dict[str, object] = {
            "name": self.spec.name,
            "version": __version__,
            "network": self.network.name,
            "chain_id": self.network.genesis.chain_id,
            "roles": list(self.spec.roles),
            "peer_id": host.peer_id,
            "public_key": self.key.public_key.hex(),
            "listen_addrs": host.listen_addrs,
            "peers": host.connected_peers(),
            "http_url": self.http.url,
            "uptime_s": round(time.time() - self.started_at, 3),
        }
        status.update(self.peering.status())
        for section in self.status_sections:
            status.update(section())
        return status

    async def run(self) -> None:
        await run_services(self.services, self.stop_event)

    def request_stop(self) -> None:
        self.stop_event.set()


def build_node(network: NetworkConfig, name: str, data_dir: Path, faults: FaultOptions | None = None) -> Node:
    """Wire a full peer. `data_dir` holds one directory per node; this node's is `data_dir/name`. `faults` makes
    it breakable on purpose (operator fault-control routes, a byzantine mode); the default is neither."""
    faults = faults or FaultOptions()
    if not network.resolved:
        raise ConfigError(
            f"{network.source}: config is not resolved (keys, ports, peer IDs); "
            "run `ehrnet cluster init` or `ehrnet cluster up` to resolve it"
        )
    spec = network.node(name)
    paths = NodePaths(data_dir / name)
    paths.root.mkdir(parents=True, exist_ok=True)
    key = SigningKey.load(paths.key)
    bootstrap = [BootstrapPeer(p.name, p.peer_id or "", p.p2p_multiaddr) for p in network.bootstrap_of(name)]
    # The node key is also its libp2p identity, unless a test gives a validator's copy its own (node/faults/options.py).
    network_key = SigningKey.load(faults.network_key) if faults.network_key is not None else key
    listen = f"/ip4/{spec.host}/tcp/{spec.p2p_port}"
    peering = PeeringService(HostConfig(seed=network_key.seed, listen=listen), bootstrap)
    if peering.host.peer_id != spec.peer_id:
        source = faults.network_key or paths.key
        raise ConfigError(f"{network.source}: nodes.{name}.peer_id does not match the key in {source}")
    http = HttpApiService(spec.host, spec.http_port)
    auth = OperatorAuth.load_or_create(paths.token)
    probe = ProbeService(peering.host)
    # A byzantine node (testing only) hands its ledger a host stand-in that lies for it; nothing else sees it.
    ledger_host: P2PHost = peering.host
    byzantine: ByzantineHost | None = None
    byzantine_services: list[Service] = []
    if faults.byzantine is not None:
        byzantine, byzantine_services = byzantine_parts(peering.host, faults.byzantine, key, network.genesis.chain_id)
        ledger_host = cast(P2PHost, byzantine)  # duck-typed: the real host except what the mode rewrites
        log.warning("UNSAFE: byzantine mode %r: this validator attacks its own network", faults.byzantine)
    ledger = LedgerService(
        ledger_host,
        genesis_of(network),
        paths.root,
        key,
        block_interval_s=network.block_interval_ms / 1000,
        idle_block_interval_s=network.idle_block_interval_ms / 1000,
        config_members=[p.peer_id for p in network.nodes if p.peer_id],
    )
    storage = StorageService(
        peering.host,
        paths.root / "blocks",
        auth,
        takes_replicas="storage" in spec.roles,
        bootstrap=[(p.peer_id, p.multiaddr) for p in bootstrap],
    )
    if byzantine is not None:
        byzantine.attach(ledger)
    light = LightServer(peering.host, ledger.store)
    services: list[Service] = [peering, probe, ledger, *byzantine_services, light, storage]
    status_sections: list[Callable[[], dict[str, object]]] = []
    erasure_handlers: list[OnErasure] = [lambda uid, cids: _unpin_erased(storage, cids)]
    fetch = functools.partial(_fetch_record, storage)
    if "manager" in spec.roles:
        manager = ManagerService(
            peering.host, key, ledger, storage.objects, paths.root / "keystore", fetch, storage.on_added
        )
        services.append(manager)
        status_sections.append(manager.status)
        http.add_routes(manager.routes())
        erasure_handlers.append(lambda uid, cids: _shred(manager, uid))
    services.append(ErasureWatcher(ledger, erasure_handlers, paths.root / "erasure.cursor"))
    if "edge" in spec.roles:
        # Imported only where needed: the analyses pull in numpy/scipy, which other roles do not need.
        from node.edge.result_filing import EdgeRecordSink
        from node.edge.service import build_edge_service

        records = EdgeRecordSink(
            peering.host, key, ledger, storage.objects, lambda: _manager_of(network), storage.on_added
        )
        edge = build_edge_service(peering.host, key.seed, sink=records)
        services += [records, edge]
        http.add_routes(edge.routes())
    services.append(http)
    views = ViewService(ledger.genesis.params.max_tx_gas, auth.presented)
    services.append(views)  # after http: stopped first, so a running view cannot hold the HTTP service's stop
    node = Node(network, spec, paths, key, peering, http, auth, services)
    node.status_sections += [ledger.status, *status_sections]
    node.status_sections.append(storage.status)
    http.add_routes(ledger_routes(ledger))
    http.add_routes(light.routes())
    http.add_routes(storage.routes())
    http.add_routes(contract_routes(ledger, views))
    http.add_routes(_core_routes(node))
    http.add_routes(_probe_routes(node, probe))
    if faults.control:
        control = FaultControl(
            peering.host, auth, ledger.faults, byzantine=byzantine.status if byzantine is not None else None
        )
        http.add_routes(control.routes())
        log.warning("fault control is enabled: operator routes under /admin/faults can break this node")
    return node


def _manager_of(network: NetworkConfig) -> tuple[str, bytes]:
    """(peer ID, public key) of the network's EHRs manager: the first node with the `manager` role."""
    for spec in network.nodes:
        if "manager" in spec.roles and spec.peer_id:
            return spec.peer_id, public_key_of_peer_id(spec.peer_id)
    raise ConfigError(f"{network.source}: no node has the 'manager' role")


def _shred(manager: ManagerService, uid: bytes) -> None:
    manager.erase_user(uid)


def _unpin_erased(storage: StorageService, cids: list[str]) -> None:
    parsed = []
    for text in cids:
        with contextlib.suppress(StorageError, ValueError):
            parsed.append(CID.parse(text))
    storage.erase(parsed)


async def _fetch_record(storage: StorageService, cid: CID) -> bytes:
    """A record's ciphertext: from this node's store, else from its providers through the DHT."""
    try:
        return b"".join(storage.objects.cat(cid))
    except StorageError:
        return b"".join([chunk async for chunk in storage.fetch_remote(cid)])


def _core_routes(node: Node) -> list[web.RouteDef]:
    async def status(_: web.Request) -> web.Response:
        return web.json_response(node.status())

    async def shutdown(request: web.Request) -> web.Response:
        node.auth.require(request)
        await request.read()  # drain the body, so the connection is idle when the HTTP service stops
        asyncio.get_running_loop().call_soon(node.request_stop)
        return web.json_response({"stopping": True})

    async def openapi(_: web.Request) -> web.Response:
        return web.json_response(describe())

    return [web.get("/status", status), web.post("/admin/shutdown", shutdown), web.get("/openapi.json", openapi)]


def _probe_routes(node: Node, probe: ProbeService) -> list[web.RouteDef]:
    async def publish(request: web.Request) -> web.Response:
        node.auth.require(request)
        body = await read_json(request, max_bytes=SMALL_BODY)
        count = body.get("count", 1) if isinstance(body, dict) else None
        rate = body.get("rate", 100.0) if isinstance(body, dict) else None
        pad = body.get("pad", 0) if isinstance(body, dict) else None
        if not isinstance(count, int) or not 1 <= count <= 100_000:
            return json_error(400, "count: an integer 1–100000")
        if not isinstance(rate, int | float) or not 0 < rate <= 100_000:
            return json_error(400, "rate: messages per second, 0 < rate ≤ 100000")
        if not isinstance(pad, int) or not 0 <= pad <= 1_000_000:
            return json_error(400, "pad: padding bytes 0–1000000")
        try:
            first, last, took = await probe.burst(count, float(rate), pad)
        except P2PError as exc:
            return json_error(503, f"publish failed: {exc}")
        return web.json_response({"first_seq": first, "last_seq": last, "seconds": took})

    async def received(request: web.Request) -> web.Response:
        node.auth.require(request)
        try:
            since = int(request.query.get("since_ns", "0"))
        except ValueError:
            return json_error(400, "since_ns: an integer (ns since the Unix epoch)")
        records = [
            {"origin": r.origin, "seq": r.seq, "sent_ns": r.sent_ns, "received_ns": r.received_ns}
            for r in probe.received(since)
        ]
        return web.json_response({"records": records, "malformed": probe.malformed})

    return [web.post("/probe/publish", publish), web.get("/probe/received", received)]
