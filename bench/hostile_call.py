"""A worst-case contract call at the maximum gas limit on a 4-node cluster: how much does it delay finality?

    .venv/bin/python -m bench.hostile_call [--nodes 4] [--probes 5] [--json]

Starts a local cluster (real processes, libp2p, LMDB, HTTP; `generate_network`, so VM version 2 and the gas
bounds of the block-time rule), deploys a contract whose one function compares two 90,000-node nested lists in
an endless loop — the call that, under VM version 1, held a chain back for minutes — and calls it with
`gas_limit = max_tx_gas`. A `record` transaction sent right after it probes the next block. Figures: the time
from submission to finality of the hostile call and of the probe, the commit round of their blocks (0 = no
round was lost), and the same latency for plain `record` transactions before it (the baseline, median). The
acceptance bound: the hostile call delays finality by no more than one round (its block and the next commit in
round ≤ 1). A cheap call to the same contract with the same gas limit is timed too, to separate the contract
path's own latency from the hostile call's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from consensus.tx import Tx
from node.client import NodeClient
from node.cluster.config import generate_network
from node.cluster.running import start_cluster
from primitives import codec
from primitives.keys import SigningKey

HOSTILE = """
def init():
    pass


def cheap() -> int:
    return 1


def stall() -> int:
    a = [[0] * 300] * 300
    b = [[0] * 300] * 300
    n = 0
    while True:
        if a == b:
            n += 1
    return n
"""
FINAL_TIMEOUT_S = 600.0


def _post(node: NodeClient, tx: Tx) -> float:
    node.submit(tx.raw)  # a refusal raises NodeRefused with the node's reason
    return time.monotonic()


def _wait_final(node: NodeClient, tx: Tx, timeout: float = FINAL_TIMEOUT_S) -> tuple[float, dict[str, Any]]:
    """(when the transaction was seen final, its status document). A node that long-polls answers the moment the
    block is final; one that does not is polled every 50 ms, which bounds the error of each figure."""
    doc = node.wait_final(tx.hash.hex(), timeout)
    return time.monotonic(), doc


def _commit_round(node: NodeClient, height: int) -> int:
    commit = node.block(height).get("commit") or {}
    return int(commit.get("round", -1))


class _Sender:
    def __init__(self, key: SigningKey, chain_id: str, node: NodeClient) -> None:
        self.key, self.chain_id = key, chain_id
        self.nonce = node.next_nonce(key.address.hex())

    def tx(self, kind: str, body: dict[str, codec.Value]) -> Tx:
        tx = Tx.create(self.key, self.chain_id, kind, self.nonce, body)
        self.nonce += 1
        return tx


def run(nodes: int, probes: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        network = generate_network(nodes, name=f"hostile{nodes}")
        max_gas = int(network.genesis.params["max_tx_gas"])
        cluster = start_cluster(network, Path(tmp), timeout=90)
        try:
            clients = [NodeClient.connect(record.http_url) for record in cluster.records.values()]
            entry, observer = clients[0], clients[-1]  # submitted to one node, seen final on another
            chain_id = entry.chain_id()
            admin = _Sender(SigningKey.load(Path(tmp) / "keys" / "admin.key"), chain_id, entry)
            user = _Sender(SigningKey.generate(), chain_id, entry)
            deploy = admin.tx("deploy", {"source": HOSTILE, "args": [], "gas_limit": 1_000_000, "name": "hostile"})
            _post(entry, deploy)
            _, deployed = _wait_final(observer, deploy)
            if deployed["receipt"]["status"] != "ok":
                raise RuntimeError(f"the hostile contract did not deploy: {deployed['receipt']}")
            baseline = []
            for i in range(probes):
                probe = user.tx("record", {"key": b"probe/%d" % i, "value": b"x"})
                sent = _post(entry, probe)
                seen, _ = _wait_final(observer, probe)
                baseline.append(seen - sent)
            cheap = []
            for _ in range(probes):
                probe = user.tx("call", {"contract": "hostile", "function": "cheap", "args": [], "gas_limit": max_gas})
                sent = _post(entry, probe)
                seen, _ = _wait_final(observer, probe)
                cheap.append(seen - sent)
            hostile = user.tx("call", {"contract": "hostile", "function": "stall", "args": [], "gas_limit": max_gas})
            after = user.tx("record", {"key": b"after", "value": b"x"})
            sent = _post(entry, hostile)
            sent_after = _post(entry, after)
            hostile_seen, hostile_doc = _wait_final(observer, hostile)
            after_seen, after_doc = _wait_final(observer, after)
            hostile_height, after_height = hostile_doc["height"], after_doc["height"]
            rounds = {h: _commit_round(observer, h) for h in range(hostile_height, after_height + 1)}
        finally:
            cluster.down()
    median = statistics.median(baseline)
    return {
        "nodes": nodes,
        "max_tx_gas": max_gas,
        "hostile_gas_used": hostile_doc["receipt"].get("gas"),
        "hostile_status": hostile_doc["receipt"]["status"],
        "baseline_finality_s_median": round(median, 3),
        "baseline_finality_s": [round(b, 3) for b in baseline],
        "cheap_call_finality_s_median": round(statistics.median(cheap), 3),
        "hostile_finality_s": round(hostile_seen - sent, 3),
        "next_tx_finality_s": round(after_seen - sent_after, 3),
        "finality_delay_s": round(max(hostile_seen - sent, after_seen - sent_after) - median, 3),
        "hostile_height": hostile_height,
        "next_tx_height": after_height,
        "commit_rounds": rounds,  # height → the round its commit was made in (0: no round lost)
        "max_commit_round": max(rounds.values()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="finality delay caused by a worst-case contract call at max gas")
    parser.add_argument("--nodes", type=int, default=4, help="validators in the cluster")
    parser.add_argument("--probes", type=int, default=5, help="record transactions timed before, for the baseline")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    options = parser.parse_args(argv)
    result = run(options.nodes, options.probes)
    if options.json:
        print(json.dumps(result, indent=2))
        return 0
    for label, value in result.items():
        print(f"{label:<30} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
