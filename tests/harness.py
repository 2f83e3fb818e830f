"""Test harness: real node processes on free ports, condition-based waiting, and cleanup that never leaves a
process behind."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import psutil

from node.cli.cluster import start_cluster
from node.client.client import call_url
from node.cluster.config import NetworkConfig, generate_network
from node.cluster.local import Cluster

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A condition did not hold within its timeout."""


def wait_until(predicate: Callable[[], T], timeout: float, interval: float = 0.05, what: str = "condition") -> T:
    """Poll `predicate` until it returns something truthy; return that value or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise WaitTimeout(f"{what} did not hold within {timeout} s")
        time.sleep(interval)


def holds_for(predicate: Callable[[], object], seconds: float, interval: float = 0.1) -> bool:
    """Poll `predicate` for `seconds`; False as soon as it fails once. For properties of the form "nothing
    happens", which no condition can signal (e.g. a chain without a quorum finalises no block)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not predicate():
            return False
        time.sleep(interval)
    return bool(predicate())


async def await_until(
    predicate: Callable[[], Any], timeout_s: float, interval: float = 0.02, what: str = "condition"
) -> Any:
    """The asyncio form of `wait_until`; `predicate` may be sync or async."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise WaitTimeout(f"{what} did not hold within {timeout_s} s")
        await asyncio.sleep(interval)


def http_json(method: str, url: str, body: Any = None, token: str | None = None, timeout: float = 10.0) -> Any:
    """One JSON request to a full URL through the node client: a refusal raises `NodeRefused` (its `status` and
    the node's `message`), any other failure another `NodeError`."""
    return call_url(method, url, body, token, timeout)


def operator_token(cluster: Cluster, name: str) -> str:
    return (Path(cluster.records[name].data_dir) / "api.token").read_text().strip()


def node_processes() -> list[psutil.Process]:
    """Live ehrnet node processes started from this test run (children of this process)."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and "node.cli" in " ".join(proc.cmdline()):
                found.append(proc)
        except psutil.NoSuchProcess:
            continue
    return found


@contextmanager
def running_cluster(data_dir: Path, network: NetworkConfig | None = None, n: int = 4) -> Iterator[Cluster]:
    """Start a meshed cluster of real node processes; on exit stop it and SIGKILL anything left."""
    cluster = start_cluster(network or generate_network(n), data_dir, timeout=30)
    try:
        yield cluster
    finally:
        cluster.down(timeout=5)
        for proc in node_processes():
            proc.kill()
            proc.wait(5)
