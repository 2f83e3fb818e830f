"""A maximum-gas view does not stop the node: on a real one-node chain whose max_tx_gas allows minutes of
contract code, `/status` answers and blocks are finalised while such a view is still running (it runs in a
view worker process, not on the event loop)."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest

from node.cli.contract import main
from node.client import NodeError
from node.cluster.config import generate_network
from tests.harness import http_json, running_cluster, wait_until

pytestmark = pytest.mark.cluster

SPIN = """
def spin() -> int:
    n = 0
    while True:
        n = n + 1
    return n
"""
MAX_TX_GAS = 2_000_000_000  # minutes of interpreter time: the view is certainly running throughout the test


def _height(url: str) -> int | None:
    try:
        return int(http_json("GET", f"{url}/status", timeout=2)["height"])
    except NodeError:
        return None


def test_status_and_blocks_go_on_while_a_maximum_gas_view_runs(tmp_path: Path) -> None:
    network = generate_network(1)
    # VM version 1 predates the block-time rule, so its genesis may allow a view this long; the view route's
    # bound is max_tx_gas whatever the version.
    params = {**network.genesis.params, "vm_version": 1, "max_tx_gas": MAX_TX_GAS, "max_block_gas": MAX_TX_GAS}
    network = dataclasses.replace(network, genesis=dataclasses.replace(network.genesis, params=params))
    with running_cluster(tmp_path, network, n=1) as cluster:
        url = cluster.records["node1"].http_url
        source = tmp_path / "spin.py"
        source.write_text(SPIN)
        admin_key = str(cluster.data_dir / "keys" / "admin.key")
        assert main(["contract", "deploy", str(source), "--key", admin_key, "--node", url, "--name", "spin"]) == 0
        answers: list[object] = []

        def view() -> None:
            body = {"function": "spin", "args": [], "gas_limit": MAX_TX_GAS}
            try:
                answers.append(http_json("POST", f"{url}/contracts/spin/call", body, timeout=120))
            except NodeError as exc:
                answers.append(exc)

        caller = threading.Thread(target=view, daemon=True)
        caller.start()
        start: int = wait_until(lambda: _height(url), 10, what="/status answers while the view runs") or 0
        wait_until(lambda: (_height(url) or 0) >= start + 2, 30, what="two more blocks while the view runs")
        assert caller.is_alive() and not answers, f"the view ended early: {answers}"
