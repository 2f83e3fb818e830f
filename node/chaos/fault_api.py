"""Client of a node's operator-only fault-control routes (`/admin/faults/...`, docs/API.md), through the node client.

The routes exist only on a node started with fault control enabled (`EHRNET_FAULT_CONTROL=1`, which the chaos
runner sets for the nodes it starts); elsewhere they answer 404, which is reported as such rather than as a failed
fault.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from node.client import NodeClient, NodeError, NodeRefused
from node.cluster.local import Cluster

FAULT_CONTROL_ENV = "EHRNET_FAULT_CONTROL"
TIMEOUT_S = 5.0


class FaultControlError(RuntimeError):
    """A fault-control request failed; the message names the node and the route."""


def _ask(cluster: Cluster, name: str, route: str, action: Callable[[NodeClient], Any]) -> Any:
    try:
        return action(cluster.client(name, TIMEOUT_S))
    except NodeRefused as exc:
        if exc.status == 404:
            raise FaultControlError(
                f"{name}: {route} answered 404: the node runs without fault control ({FAULT_CONTROL_ENV}=1) "
                "or does not have this route"
            ) from exc
        raise FaultControlError(f"{name}: {route}: HTTP {exc.status}: {exc.message[:200]}") from exc
    except NodeError as exc:
        raise FaultControlError(f"{name}: {route}: {exc}") from exc


def gate(cluster: Cluster, name: str, blocked_peers: list[str]) -> Any:
    """Replace the set of peers `name` refuses (an empty list lifts the gate)."""
    return _ask(cluster, name, "POST /admin/faults/gate", lambda client: client.gate(blocked_peers))


def disconnect(cluster: Cluster, name: str, peer: str) -> Any:
    return _ask(cluster, name, "POST /admin/faults/disconnect", lambda client: client.disconnect(peer))


def arm(cluster: Cluster, name: str, point: str, min_height: int) -> Any:
    return _ask(cluster, name, "POST /admin/faults/arm", lambda client: client.arm(point, min_height))


def state(cluster: Cluster, name: str) -> Any:
    return _ask(cluster, name, "GET /admin/faults", lambda client: client.faults())
