"""`GET /tx/{hash}?wait=final` on a real node (a one-validator network, real HTTP, real LMDB): a parked request
is woken by the block that makes its transaction final, an unknown one times out cleanly, a hundred parked at
once all end and leave no waiter behind, and a node with requests parked still stops promptly."""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.error
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from consensus.tx import Tx
from node.cluster.config import generate_network
from primitives.keys import SigningKey
from tests.harness import http_json, running_cluster, wait_until

pytestmark = pytest.mark.cluster


def get(url: str, timeout: float = 30) -> tuple[int, dict[str, Any], float]:
    """(status, body, seconds taken)."""
    began = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read()), time.monotonic() - began
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), time.monotonic() - began


def waiters(base: str) -> int:
    return int(http_json("GET", f"{base}/status")["commit_feed"]["waiters"])


def test_a_long_poll_is_woken_by_the_commit_times_out_cleanly_and_leaks_nothing(tmp_path: Path) -> None:
    # A long idle interval: the chain makes a block only because the transaction arrives, long after the wait began.
    network = dataclasses.replace(generate_network(1), idle_block_interval_ms=60_000)
    with running_cluster(tmp_path / "net", network, n=1) as cluster, ThreadPoolExecutor(max_workers=110) as pool:
        base = cluster.records["node1"].http_url
        chain_id = str(http_json("GET", f"{base}/status")["chain_id"])
        tx = Tx.create(SigningKey.generate(), chain_id, "record", 0, {"key": b"k", "value": b"v"})
        wait_url = f"{base}/tx/{tx.hash.hex()}?wait=final&timeout=30"

        # Woken: parked before the node has even seen the transaction, answered once its block is final.
        parked: Future[tuple[int, dict[str, Any], float]] = pool.submit(get, wait_url)
        wait_until(lambda: waiters(base) == 1, 10, what="the request is parked on the commit feed")
        http_json("POST", f"{base}/tx", {"tx": tx.raw.hex()})
        status, answer, took = parked.result(timeout=30)
        assert status == 200 and answer["status"] == "final" and answer["receipt"]["status"] == "ok"
        assert took < 25  # the block woke it, not its 30 s timeout
        # Already final: answered at once.
        status, answer, took = get(wait_url)
        assert status == 200 and answer["status"] == "final" and took < 5

        # Times out cleanly: still unknown when the wait ends, so the same 404 as without `wait`.
        unknown = bytes(range(32)).hex()
        status, answer, took = get(f"{base}/tx/{unknown}?wait=final&timeout=0.5")
        assert status == 404 and "neither pending nor final" in answer["error"] and 0.5 <= took < 5
        status, answer, _ = get(f"{base}/tx/{unknown}?wait=final&timeout=600")
        assert status == 400 and answer["error"].startswith("timeout:")

        # A hundred parked at once: all answered at their timeout, none left on the feed.
        many = [pool.submit(get, f"{base}/tx/{i:064x}?wait=final&timeout=2") for i in range(100)]
        wait_until(lambda: waiters(base) == 100, 15, what="a hundred requests parked")
        assert all(f.result(timeout=30)[0] == 404 for f in many)
        assert waiters(base) == 0

        # A node with a request parked for up to a minute still stops at once (the wait ends on shutdown).
        lingering = pool.submit(get, f"{base}/tx/{unknown}?wait=final&timeout=60", 70)
        wait_until(lambda: waiters(base) == 1, 10, what="a long wait parked")
        began = time.monotonic()
        assert cluster.stop("node1", timeout=20) == 0
        assert time.monotonic() - began < 10
        assert lingering.result(timeout=10)[0] == 404  # answered with the status it had when the node stopped
