"""Operator-only fault control: the HTTP routes a fault-injection run uses to break a live node on purpose.

Where the runner cannot use network namespaces (node/cluster/netns.py needs root), partitions are made inside the nodes:
each node is told which peers to refuse (connection gating in the libp2p host) or to drop one connection now.
The same endpoint arms the ledger's fault points (node/faults/points.py) and reports the node's byzantine mode.

None of this exists unless the node was started with `--fault-control` (or `EHRNET_FAULT_CONTROL=1`): the routes
are not registered at all, so they answer 404 like any unknown path, and a production node offers no way to
partition it from the API even to a holder of its operator token. When enabled, every route needs the operator
token (docs/API.md, "Fault control").
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from node.api.server import SMALL_BODY, OperatorAuth, json_error, read_json

log = logging.getLogger(__name__)

ENABLE_ENV = "EHRNET_FAULT_CONTROL"
MAX_BLOCKED_PEERS = 1024
GATE_BODY = MAX_BLOCKED_PEERS * 72 + 64  # a full list of quoted peer IDs (at most 64 characters each)
_PEER_ID_CHARS = set("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")  # base58


class Gate(Protocol):
    """What fault control needs of the libp2p host (node/p2p/bridge.py)."""

    async def set_blocked_peers(self, peer_ids: Iterable[str]) -> None: ...

    async def disconnect(self, peer_id: str) -> object: ...

    def connected_peers(self) -> list[str]: ...


class Armable(Protocol):
    """What fault control needs of the ledger's fault points (node/faults/points.py `FaultPoints`)."""

    def arm(self, name: str, min_height: int = 0) -> None: ...

    def armed(self) -> dict[str, int]: ...


def enabled_by_env(environ: Mapping[str, str] | None = None) -> bool:
    return (os.environ if environ is None else environ).get(ENABLE_ENV, "").strip() == "1"


@dataclass
class FaultState:
    """What is broken right now, as `GET /admin/faults` reports it."""

    blocked_peers: frozenset[str] = frozenset()
    disconnects: int = 0


def _peer_id(value: object, where: str) -> str:
    if not isinstance(value, str) or not 32 <= len(value) <= 64 or not set(value) <= _PEER_ID_CHARS:
        raise web.HTTPBadRequest(reason=f"{where}: a libp2p peer ID (base58, e.g. 12D3Koo...), not {value!r}")
    return value


class FaultControl:
    """The `/admin/faults` routes of one node."""

    def __init__(
        self,
        host: Gate,
        auth: OperatorAuth,
        points: Armable,
        byzantine: Callable[[], dict[str, object]] | None = None,
    ) -> None:
        self.host = host
        self.auth = auth
        self.points = points
        self.byzantine = byzantine
        self.state = FaultState()

    def status(self) -> dict[str, object]:
        return {
            "blocked_peers": sorted(self.state.blocked_peers),
            "disconnects": self.state.disconnects,
            "armed": self.points.armed(),
            "byzantine": self.byzantine() if self.byzantine is not None else None,
        }

    async def set_blocked(self, peers: set[str]) -> None:
        await self.host.set_blocked_peers(set(peers))
        self.state.blocked_peers = frozenset(peers)
        log.warning("fault control: blocking %d peer(s): %s", len(peers), ", ".join(sorted(peers)) or "none")

    def routes(self) -> list[web.RouteDef]:
        async def show(request: web.Request) -> web.Response:
            self.auth.require(request)
            return web.json_response(self.status())

        async def gate(request: web.Request) -> web.Response:
            self.auth.require(request)
            body = await read_json(request, max_bytes=GATE_BODY)
            peers = body.get("blocked_peers") if isinstance(body, dict) else None
            if not isinstance(peers, list) or len(peers) > MAX_BLOCKED_PEERS:
                return json_error(400, f"blocked_peers: a list of at most {MAX_BLOCKED_PEERS} peer IDs ([] heals)")
            await self.set_blocked({_peer_id(p, f"blocked_peers[{i}]") for i, p in enumerate(peers)})
            return web.json_response(self.status())

        async def disconnect(request: web.Request) -> web.Response:
            self.auth.require(request)
            body = await read_json(request, max_bytes=SMALL_BODY)
            peer = _peer_id(body.get("peer") if isinstance(body, dict) else None, "peer")
            was_connected = peer in self.host.connected_peers()
            await self.host.disconnect(peer)
            self.state.disconnects += 1
            log.warning("fault control: disconnected %s", peer)
            return web.json_response({"peer": peer, "was_connected": was_connected})

        async def arm(request: web.Request) -> web.Response:
            self.auth.require(request)
            body = await read_json(request, max_bytes=SMALL_BODY)
            if not isinstance(body, dict):
                return json_error(400, 'body: {"point": NAME, "min_height": H}')
            point, min_height = body.get("point"), body.get("min_height", 0)
            if not isinstance(point, str):
                return json_error(400, "point: the fault point's name, e.g. crash-after-precommit")
            if not isinstance(min_height, int) or isinstance(min_height, bool) or min_height < 0:
                return json_error(400, f"min_height: a non-negative integer, not {min_height!r}")
            try:
                self.points.arm(point, min_height)
            except ValueError as exc:  # FaultPointError: an unknown point or a bad height
                return json_error(400, f"point: {exc}")
            return web.json_response(self.status())

        return [
            web.get("/admin/faults", show),
            web.post("/admin/faults/gate", gate),
            web.post("/admin/faults/disconnect", disconnect),
            web.post("/admin/faults/arm", arm),
        ]
