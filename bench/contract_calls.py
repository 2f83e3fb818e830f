"""Contract-call throughput on one node: EHR `set_policy` transactions through `POST /tx` until final.

    .venv/bin/python -m bench.contract_calls [--count N] [--senders S] [--json]
    ehrnet bench contracts --json

Starts a one-node cluster (real process, real consensus, LMDB, HTTP), registers S patients and a few doctors
with the admin key, then offers N pre-signed `set_policy(patient, doctor, "*", 0)` calls, each signed by the
patient (the EHR contract lets patients manage their own grants), in batches of 100 as fast as the node takes
them. Signing happens before the clock starts, as in `bench/ledger.py`. The figure is N divided by the time
from the first submission to the block that made the last one final; every call's receipt must be ok.
The paper's reference point: a one-node Ethereum dev chain did about 250 such calls per second on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

from consensus.tx import Tx
from node.client import NodeClient
from node.cluster.config import generate_network
from node.cluster.running import start_cluster
from primitives import codec
from primitives.keys import SigningKey

# ~57 KB of JSON per request: node/api/server.py read_json takes one read() of the body, which can return a partial body
# for larger requests (reported to the lead); below ~100 KB it arrives whole on loopback.
BATCH = 100
GAS = 1_000_000
DOCTORS = 8
ENC_PK = b"\x22" * 32


def _call_tx(key: SigningKey, chain_id: str, nonce: int, function: str, args: list[codec.Value]) -> Tx:
    body: dict[str, codec.Value] = {"contract": "ehr", "function": function, "args": args, "gas_limit": GAS}
    return Tx.create(key, chain_id, "call", nonce, body)


def _submit(node: NodeClient, txs: list[Tx]) -> None:
    for start in range(0, len(txs), BATCH):
        answer = node.submit_batch([t.raw for t in txs[start : start + BATCH]])
        if len(answer.get("hashes", [])) != len(txs[start : start + BATCH]):
            raise RuntimeError(f"the node refused transactions: {answer}")


def _follow(node: NodeClient, from_height: int, wanted: int, timeout: float) -> tuple[int, float, int]:
    """Follow final blocks until `wanted` transactions were seen: (last height, time it was seen, blocks)."""
    seen, height, blocks = 0, from_height, 0
    deadline = time.monotonic() + timeout
    while seen < wanted:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {seen} of {wanted} transactions final after {timeout:.0f} s")
        head = node.status()["height"]
        while height < head and seen < wanted:
            height += 1
            txs = node.block(height)["txs"]
            seen += len(txs)
            blocks += 1 if txs else 0
        time.sleep(0.01)
    return height, time.monotonic(), blocks


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def run(count: int, senders: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        cluster = start_cluster(generate_network(1, name="contracts1"), Path(tmp), timeout=60)
        try:
            record = next(iter(cluster.records.values()))
            node = NodeClient.connect(record.http_url)
            node_process = psutil.Process(record.pid)
            chain_id = node.chain_id()
            admin = SigningKey.load(Path(tmp) / "keys" / "admin.key")
            patients = [SigningKey(bytes([1, i % 256, i // 256]).ljust(32, b"p")) for i in range(senders)]
            doctors = [SigningKey(bytes([2, i]).ljust(32, b"d")) for i in range(DOCTORS)]
            nonce = node.next_nonce(admin.address.hex())
            setup = [
                _call_tx(admin, chain_id, nonce + i, "add_user", [k.public_key, role, ENC_PK, area])
                for i, (k, role, area) in enumerate(
                    [(p, "patient", "area-1") for p in patients] + [(d, "doctor", "") for d in doctors]
                )
            ]
            start_height = node.status()["height"]
            _submit(node, setup)
            _follow(node, start_height, len(setup), timeout=60)
            load = [
                _call_tx(
                    patients[i % senders],
                    chain_id,
                    i // senders,
                    "set_policy",
                    [patients[i % senders].public_key, doctors[(i // senders) % DOCTORS].public_key, "*", 0],
                )
                for i in range(count)
            ]
            first_height = node.status()["height"]
            cpu_before = _cpu_seconds(node_process)
            started = time.monotonic()
            _submit(node, load)
            submitted = time.monotonic()
            last_height, finished, blocks = _follow(node, first_height, count, timeout=300)
            node_cpu = _cpu_seconds(node_process) - cpu_before
            sample = load[:: max(1, count // 25)]
            receipts = [node.receipt(t.hash.hex()) for t in sample]
            failed = [r for r in receipts if r["status"] != "ok"]
            if failed:
                raise RuntimeError(f"set_policy calls failed: {failed[0]}")
        finally:
            cluster.down()
    elapsed = finished - started
    return {
        "nodes": 1,
        "calls": count,
        "senders": senders,
        "committed_tps": round(count / elapsed, 1),
        "seconds": round(elapsed, 2),
        "submit_seconds": round(submitted - started, 2),
        # The node's own CPU time over the run: tx per node CPU-second is what the load on a shared machine
        # (the bench client included) does not change much.
        "node_cpu_seconds": round(node_cpu, 2),
        "tx_per_node_cpu_second": round(count / node_cpu, 1),
        "blocks": blocks,
        "final_height": last_height,
        "mean_gas": round(sum(r["gas_used"] for r in receipts) / len(receipts), 1),
        "receipts_checked_ok": len(receipts),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="EHR set_policy transactions per second on one node")
    parser.add_argument("--count", type=int, default=4_000)
    parser.add_argument("--senders", type=int, default=32, help="patients signing (each nonce run <= 256)")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args(argv)
    if not 1 <= options.senders <= 200 or options.count > 250 * options.senders:
        parser.error("--senders 1..200, and at most 250 calls per sender (the mempool's per-sender window)")
    report = run(options.count, options.senders)
    if options.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:>20}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
