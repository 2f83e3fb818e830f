"""An acknowledged transaction survives a SIGKILL of the node that acknowledged it (real processes, real LMDB).

The node is killed the moment its last answer arrives — before its next gossip batch can leave (they go every
0.2 s) — so the only copy of the newest transactions is the one it wrote before answering. It restarts, reloads
them and gossips them again; every acknowledged transaction must become final, and exactly once.
"""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from consensus.tx import Tx
from node.cluster.config import generate_network
from node.cluster.local import Cluster
from primitives.keys import SigningKey
from tests.harness import http_json, running_cluster, wait_until

pytestmark = pytest.mark.cluster

SENDERS = 12
REQUESTS_PER_ROUND = 3
ROUNDS = 3


class ChainTally:
    """Counts how often each transaction hash appears in one node's final blocks (reads each block once)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.read_upto = 0
        self.seen: Counter[str] = Counter()

    def catch_up(self) -> Counter[str]:
        head = int(http_json("GET", f"{self.url}/status")["height"])
        for height in range(self.read_upto + 1, head + 1):
            block: dict[str, Any] = http_json("GET", f"{self.url}/blocks/{height}")
            self.seen.update(tx["hash"] for tx in block["txs"])
        self.read_upto = max(self.read_upto, head)
        return self.seen


def post_txs(url: str, txs: list[Tx]) -> list[str]:
    body = json.dumps({"txs": [tx.raw.hex() for tx in txs]}).encode()
    request = urllib.request.Request(f"{url}/tx", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        hashes: list[str] = json.loads(response.read())["hashes"]
    assert hashes == [tx.hash.hex() for tx in txs]
    return hashes


def test_every_acknowledged_transaction_is_final_exactly_once_after_a_sigkill_right_after_the_ack(
    tmp_path: Path,
) -> None:
    network = generate_network(4)
    chain_id = network.genesis.chain_id
    keys = [SigningKey.generate() for _ in range(SENDERS)]
    nonces = [0] * SENDERS
    with running_cluster(tmp_path / "net", network) as cluster:
        names = list(cluster.records)
        victim, witness = names[0], names[1]
        tally = ChainTally(cluster.records[witness].http_url)
        acknowledged: list[str] = []
        for _ in range(ROUNDS):
            wait_until(lambda: _answers(cluster, victim), timeout=60, what=f"{victim} answering /status")
            url = cluster.records[victim].http_url
            # A stream of submissions (each sender's nonces in order), then SIGKILL as soon as the last is answered.
            for _ in range(REQUESTS_PER_ROUND):
                txs = []
                for n, key in enumerate(keys):
                    txs.append(Tx.create(key, chain_id, "record", nonces[n], {"key": b"k", "value": b"%d" % nonces[n]}))
                    nonces[n] += 1
                acknowledged += post_txs(url, txs)
            cluster.kill(victim)
            cluster.spawn(victim)

        wait_until(
            lambda: set(acknowledged) <= set(tally.catch_up()),
            timeout=120,
            interval=0.5,
            what=f"all {len(acknowledged)} acknowledged transactions final on {witness}",
        )
        counts = tally.catch_up()
        assert [h for h in acknowledged if counts[h] != 1] == []
        # The restarted node reaches the same chain.
        head = tally.read_upto
        wait_until(lambda: _height(cluster, victim) >= head, timeout=60, what=f"{victim} caught up to {head}")
        for height in (1, head):
            mine = http_json("GET", f"{cluster.records[victim].http_url}/blocks/{height}")["hash"]
            assert mine == http_json("GET", f"{tally.url}/blocks/{height}")["hash"]


def _answers(cluster: Cluster, name: str) -> bool:
    return cluster.status_of(name) is not None


def _height(cluster: Cluster, name: str) -> int:
    status = cluster.status_of(name)
    return int(status["height"]) if status is not None else -1
