"""Test harness: real node processes on free ports, condition-based waiting, and cleanup that never leaves a
process behind."""

from __future__ import annotations

from typing import Any

from node.client.client import call_url

# The waiting helpers and the scoped cluster are shared with the benchmarks, so they live in node/cluster/; the
# tests keep importing them from here.
from node.cluster.conditions import WaitTimeout as WaitTimeout
from node.cluster.conditions import await_until as await_until
from node.cluster.conditions import holds_for as holds_for
from node.cluster.conditions import wait_until as wait_until
from node.cluster.running import node_processes as node_processes
from node.cluster.running import operator_token as operator_token
from node.cluster.running import running_cluster as running_cluster


def http_json(method: str, url: str, body: Any = None, token: str | None = None, timeout: float = 10.0) -> Any:
    """One JSON request to a full URL through the node client: a refusal raises `NodeRefused` (its `status` and
    the node's `message`), any other failure another `NodeError`."""
    return call_url(method, url, body, token, timeout)
