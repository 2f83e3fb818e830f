"""Client of a node's operator-only fault-control routes (`/admin/faults/...`, docs/API.md).

The routes exist only on a node started with fault control enabled (`EHRNET_FAULT_CONTROL=1`, which the chaos
runner sets for the nodes it starts); elsewhere they answer 404, which is reported as such rather than as a failed
fault.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from node.cluster.local import Cluster

FAULT_CONTROL_ENV = "EHRNET_FAULT_CONTROL"


class FaultControlError(RuntimeError):
    """A fault-control request failed; the message names the node and the route."""


def _token(cluster: Cluster, name: str) -> str:
    return (Path(cluster.records[name].data_dir) / "api.token").read_text().strip()


def call(cluster: Cluster, name: str, method: str, route: str, body: Any = None, timeout: float = 5.0) -> Any:
    url = cluster.records[name].http_url + route
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", f"Bearer {_token(cluster, name)}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise FaultControlError(
                f"{name}: {route} answered 404: the node runs without fault control ({FAULT_CONTROL_ENV}=1) "
                "or does not have this route"
            ) from exc
        raise FaultControlError(f"{name}: {method} {route}: HTTP {exc.code}: {exc.read()[:200]!r}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise FaultControlError(f"{name}: {method} {route}: {exc}") from exc


def gate(cluster: Cluster, name: str, blocked_peers: list[str]) -> Any:
    """Replace the set of peers `name` refuses (an empty list lifts the gate)."""
    return call(cluster, name, "POST", "/admin/faults/gate", {"blocked_peers": blocked_peers})


def disconnect(cluster: Cluster, name: str, peer: str) -> Any:
    return call(cluster, name, "POST", "/admin/faults/disconnect", {"peer": peer})


def arm(cluster: Cluster, name: str, point: str, min_height: int) -> Any:
    return call(cluster, name, "POST", "/admin/faults/arm", {"point": point, "min_height": min_height})


def state(cluster: Cluster, name: str) -> Any:
    return call(cluster, name, "GET", "/admin/faults")
