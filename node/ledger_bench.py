"""`ehrnet bench ledger`: start a cluster, offer signed `record` transactions at a fixed rate, measure finality.

Transactions are signed before the clock starts (the load generator must not be the bottleneck it measures) and
submitted in batches every 50 ms over HTTP, each sender always to the same node so its nonces arrive in order.
An observer follows the chain on one node and notes when each transaction became final there.
`lost` counts transactions a node acknowledged that never became final.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from consensus import codec
from consensus.keys import SigningKey
from consensus.tx import Tx
from node.cluster import Cluster
from node.cluster_cli import start_cluster
from node.config import generate_network

TICK_S = 0.05


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def presign(chain_id: str, senders: int, total: int) -> list[list[Tx]]:
    """`total` record transactions spread over `senders` keys, each sender's list in nonce order."""
    keys = [SigningKey.generate() for _ in range(senders)]
    per_sender: list[list[Tx]] = [[] for _ in keys]
    for i in range(total):
        s = i % senders
        nonce = len(per_sender[s])
        body: dict[str, codec.Value] = {"key": b"bench/%d" % nonce, "value": b"v%d" % i}
        per_sender[s].append(Tx.create(keys[s], chain_id, "record", nonce, body))
    return per_sender


async def _drive(urls: list[str], per_sender: list[list[Tx]], rate: float, duration: float) -> dict[str, Any]:
    submitted: dict[str, float] = {}
    final: dict[str, float] = {}
    rejected = 0
    queues = [list(reversed(txs)) for txs in per_sender]
    stop_observer = asyncio.Event()
    async with aiohttp.ClientSession() as session:

        async def observe() -> None:
            # Poll for the next block directly (404 until it is final): one cheap request per poll.
            url = urls[0]
            height = (await (await session.get(f"{url}/status")).json())["height"]
            while not stop_observer.is_set():
                async with session.get(f"{url}/blocks/{height + 1}") as response:
                    if response.status == 404:
                        await asyncio.sleep(0.02)
                        continue
                    block = await response.json()
                now = time.monotonic()
                height += 1
                for tx in block["txs"]:
                    final.setdefault(tx["hash"], now)

        observer = asyncio.create_task(observe())
        start = time.monotonic()
        sent = 0
        tick = 0
        while time.monotonic() - start < duration:
            tick += 1
            due = int(rate * tick * TICK_S) - sent
            batches: dict[int, list[Tx]] = {}
            for _ in range(due):
                s = sent % len(queues)
                if not queues[s]:
                    break
                batches.setdefault(s % len(urls), []).append(queues[s].pop())
                sent += 1

            async def post(node: int, txs: list[Tx]) -> None:
                nonlocal rejected
                async with session.post(f"{urls[node]}/tx", json={"txs": [t.raw.hex() for t in txs]}) as response:
                    answer = await response.json()
                now = time.monotonic()
                accepted = set(answer.get("hashes", []))
                rejected += len(txs) - len(accepted)
                for t in txs:
                    if t.hash.hex() in accepted:
                        submitted[t.hash.hex()] = now

            await asyncio.gather(*(post(n, txs) for n, txs in batches.items()))
            delay = start + tick * TICK_S - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        load_end = time.monotonic()
        deadline = load_end + 20
        while time.monotonic() < deadline and not set(submitted) <= set(final):  # noqa: ASYNC110 - polling a dict
            await asyncio.sleep(0.1)
        stop_observer.set()
        await observer
    latencies = [final[h] - t for h, t in submitted.items() if h in final]
    last_final = max((final[h] for h in submitted if h in final), default=load_end)
    return {
        "offered_tps": round(sent / (load_end - start), 1),
        "committed_tps": round(len(latencies) / (last_final - start), 1) if latencies else 0.0,
        "p50_final_s": round(statistics.median(latencies), 3) if latencies else None,
        "p99_final_s": round(_percentile(latencies, 0.99), 3) if latencies else None,
        "lost": sum(1 for h in submitted if h not in final),
        "acknowledged": len(submitted),
        "rejected": rejected,
    }


def run_ledger_bench(nodes: int, duration: float, rate: float, senders: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        network = generate_network(nodes, name=f"bench{nodes}")
        cluster = start_cluster(network, Path(tmp), timeout=60)
        try:
            urls = [cluster.records[n].http_url for n in cluster.records]
            per_sender = presign(network.genesis.chain_id, senders, int(rate * duration))
            cpu_before = _cpu_seconds(cluster)
            report = asyncio.run(_drive(urls, per_sender, rate, duration))
            heights = [(cluster.status_of(n) or {}).get("height") for n in cluster.records]
            # CPU the nodes spent during the run (start-up excluded): the machine is shared with the load generator.
            cpu = [round(after - before, 1) for before, after in zip(cpu_before, _cpu_seconds(cluster), strict=True)]
        finally:
            cluster.down()
    return {"nodes": nodes, "duration_s": duration, **report, "final_heights": heights, "node_cpu_s": cpu}


def _cpu_seconds(cluster: Cluster) -> list[float]:
    out = []
    for record in cluster.records.values():
        try:
            times = psutil.Process(record.pid).cpu_times()
            out.append(times.user + times.system)
        except (psutil.Error, TypeError):
            out.append(0.0)
    return out
