"""End-to-end ledger benchmark: start a cluster, offer signed `record` transactions at a fixed rate, measure finality.

    .venv/bin/python -m bench.ledger [--nodes 4] [--duration 20] [--rates 1000,2000,3000] [--senders 256] [--json]
    .venv/bin/python -m bench.ledger --quick    # one short run for the CPU-per-transaction figure
    ehrnet bench ledger --quick [--json]          # the same from the installed command
    ehrnet bench ledger [--nodes 4] [--duration 20] [--rate 1000] [--senders 256] [--json]   # one rate

Each rate starts a fresh local cluster of real node processes. Transactions are signed before the clock starts (the
load generator must not be the bottleneck it measures) and due open-loop at the offered rate (every 50 ms) and
posted in batches over HTTP, each sender always to the same node, one request in flight per node. A node that is
busy (503) gets those transactions again after a short back-off; latency counts from the moment a transaction was
due, so queueing at the client counts too. An observer follows the chain on one node and notes when each
transaction became final there. Reported: committed tx/s, submit-to-final p50/p99 and `lost` (transactions a node
acknowledged that never became final; the drain after the load waits as long as blocks keep coming, up to 2
minutes). The target on a 2-core machine: >= 2,000 committed tx/s sustained; p99 <= 2 s at 1,000 tx/s; lost = 0.
Node CPU seconds are printed too, because the machine is shared and the load generator runs on it as well, and
so is their sum per committed transaction in Ed25519 signature checks timed in this process during the same run
(`node_cpu_per_tx_in_verifies`; each node must check each signature once, so the floor is one per node), and
per node what it did for it (`node_work`: signature checks per transaction, executions per block, copies of
each tx batch received — each 1 when nothing is done twice).
`--quick` gives that figure in under a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

from consensus.tx import Tx
from node.client import AsyncNodeClient, NodeRefused
from node.cluster.config import generate_network
from node.cluster.local import Cluster
from node.cluster.running import start_cluster
from primitives import codec
from primitives.keys import SigningKey

TICK_S = 0.05
MAX_POST = 2000  # transactions per HTTP request
BUSY_BACKOFF_S = 0.2
DRAIN_IDLE_S = 10.0
DRAIN_MAX_S = 120.0
REQUEST_TIMEOUT_S = 60.0
# `--quick`: the CPU-per-transaction figure in under a minute (cluster start and drain included).
QUICK_RATE, QUICK_DURATION_S = 1000.0, 8.0
VERIFY_SAMPLE = 2000  # signatures checked (three times) for the run's own Ed25519 figure


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


async def offer(client: AsyncNodeClient, txs: list[Tx]) -> tuple[set[str], set[int]]:
    """Post one batch; the hashes the node acknowledged and the indexes it refused only for being busy. A node
    that takes part of a batch and refuses the rest still answers with both lists, in its refusal."""
    try:
        answer = await client.submit_batch([t.raw for t in txs])
    except NodeRefused as exc:
        answer = exc.doc
    busy = {int(r["index"]) for r in answer.get("rejected", []) if "busy" in str(r.get("error"))}
    return set(answer.get("hashes", [])), busy


async def _drive(urls: list[str], per_sender: list[list[Tx]], rate: float, duration: float) -> dict[str, Any]:
    due_at: dict[str, float] = {}  # tx hash → when the client wanted to submit it
    submitted: dict[str, float] = {}  # acknowledged by a node: tx hash → when it was due
    final: dict[str, float] = {}
    rejected = 0
    busy_answers = 0
    queues = [list(reversed(txs)) for txs in per_sender]
    # One ordered backlog per node, and one request in flight per node, so each sender's nonces arrive in order
    # even when a node answers "busy" and its transactions are offered again.
    backlogs: list[deque[Tx]] = [deque() for _ in urls]
    stop = asyncio.Event()
    # A request that outlasts REQUEST_TIMEOUT_S is a node in trouble, not load: fail the run rather than wait.
    clients = [AsyncNodeClient.connect(url, timeout_s=REQUEST_TIMEOUT_S) for url in urls]
    try:

        async def observe() -> None:
            # Poll for the next block directly (404 until it is final): one cheap request per poll.
            height = int((await clients[0].status())["height"])
            while not stop.is_set():
                try:
                    block = await clients[0].block(height + 1)
                except NodeRefused as exc:
                    if exc.status != 404:
                        raise
                    await asyncio.sleep(0.02)
                    continue
                now = time.monotonic()
                height += 1
                for tx in block["txs"]:
                    final.setdefault(tx["hash"], now)

        async def feed(node: int) -> None:
            nonlocal rejected, busy_answers
            backlog = backlogs[node]
            # Until the drain below is over (it waits for the backlogs to empty). Not "until this backlog is
            # empty": a node that answers "busy" for ever (its gossip down, its pool full) would refill it
            # after every answer and the run would never end.
            while not stop.is_set():
                if not backlog:
                    await asyncio.sleep(TICK_S)
                    continue
                txs = [backlog.popleft() for _ in range(min(len(backlog), MAX_POST))]
                accepted, busy = await offer(clients[node], txs)
                rejected += len(txs) - len(accepted) - len(busy)
                for t in txs:
                    if t.hash.hex() in accepted:
                        submitted[t.hash.hex()] = due_at[t.hash.hex()]
                if busy:
                    # The node asked us to come back later (its backlog is full): back off, then offer them again
                    # first, in order. Their latency keeps counting from when they were due.
                    busy_answers += 1
                    backlog.extendleft(reversed([t for i, t in enumerate(txs) if i in busy]))
                    await asyncio.sleep(BUSY_BACKOFF_S)

        observer = asyncio.create_task(observe())
        feeders = [asyncio.create_task(feed(n)) for n in range(len(urls))]
        start = time.monotonic()
        sent = tick = 0
        # Open loop: what is due follows the wall clock, whatever the nodes' answers.
        while time.monotonic() - start < duration:
            tick += 1
            now = time.monotonic()
            due = int(rate * min(now - start, duration)) - sent
            for _ in range(due):
                s = sent % len(queues)
                if not queues[s]:
                    break
                tx = queues[s].pop()
                due_at[tx.hash.hex()] = now
                backlogs[s % len(urls)].append(tx)
                sent += 1
            delay = start + tick * TICK_S - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        load_end = time.monotonic()
        # Drain: wait while the chain still makes progress (a slow chain is not a lossy one); `lost` is what is
        # still not final after DRAIN_IDLE_S without any new final transaction, or after DRAIN_MAX_S.
        last_count, last_change = len(final), time.monotonic()
        while any(backlogs) or not set(submitted) <= set(final):
            now = time.monotonic()
            if len(final) != last_count:
                last_count, last_change = len(final), now
            if now - last_change > DRAIN_IDLE_S or now - load_end > DRAIN_MAX_S:
                break
            await asyncio.sleep(0.1)
        stop.set()
        for backlog in backlogs:
            backlog.clear()
        await asyncio.gather(observer, *feeders)
    finally:
        await asyncio.gather(*(client.close() for client in clients))
    latencies = [final[h] - t for h, t in submitted.items() if h in final]
    last_final = max((final[h] for h in submitted if h in final), default=load_end)
    return {
        "offered_tps": round(sent / duration, 1),
        "committed_tps": round(len(latencies) / (last_final - start), 1) if latencies else 0.0,
        "p50_final_s": round(statistics.median(latencies), 3) if latencies else None,
        "p99_final_s": round(_percentile(latencies, 0.99), 3) if latencies else None,
        "lost": sum(1 for h in submitted if h not in final),
        "committed": len(latencies),
        "acknowledged": len(submitted),
        "rejected": rejected,
        "never_accepted": sent - len(submitted) - rejected,
        "busy_answers": busy_answers,
    }


def run_ledger_bench(nodes: int, duration: float, rate: float, senders: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        network = generate_network(nodes, name=f"bench{nodes}")
        cluster = start_cluster(network, Path(tmp), timeout=60)
        try:
            urls = [cluster.records[n].http_url for n in cluster.records]
            per_sender = presign(network.genesis.chain_id, senders, int(rate * duration))
            sample = [tx for txs in per_sender for tx in txs][:VERIFY_SAMPLE]
            verify_before = ed25519_verify_s(sample)
            cpu_before = _cpu_seconds(cluster)
            report = asyncio.run(_drive(urls, per_sender, rate, duration))
            cpu_after = _cpu_seconds(cluster)
            # Measured before and after the load, in this process: the same machine, load and library as the run.
            verify_s = (verify_before + ed25519_verify_s(sample)) / 2
            statuses = [cluster.status_of(n) or {} for n in cluster.records]
            heights = [status.get("height") for status in statuses]
            tracebacks = [_count_tracebacks(Path(record.log)) for record in cluster.records.values()]
            # CPU the nodes spent during the run (start-up excluded): the machine is shared with the load generator.
            cpu = [round(after - before, 2) for before, after in zip(cpu_before, cpu_after, strict=True)]
        finally:
            cluster.down()
    return {
        "nodes": nodes,
        "duration_s": duration,
        **report,
        "final_heights": heights,
        "node_cpu_s": cpu,
        # The nodes' CPU per committed transaction (all nodes together): on a shared machine a steadier figure
        # than the rate, which also measures what the neighbours took.
        "node_cpu_ms_per_tx": round(1000 * sum(cpu) / report["committed"], 3) if report["committed"] else None,
        "ed25519_verify_us": round(1e6 * verify_s, 1),
        # The same figure in Ed25519 verifications: every node must check each signature once, so 1 per node is
        # the floor; what lies above it is delivery, execution and consensus overhead.
        "node_cpu_per_tx_in_verifies": (
            round(sum(cpu) / report["committed"] / verify_s, 1) if report["committed"] else None
        ),
        # Tracebacks in each node's log: a node whose libp2p host failed under load explains a stalled run.
        "node_tracebacks": tracebacks,
        # Where that CPU goes, per node (from its GET /status): see `work_counts`.
        "node_work": [work_counts(status, report["committed"]) for status in statuses],
    }


def work_counts(status: dict[str, Any], committed: int) -> dict[str, float | None]:
    """What one node did for the run, from its status: Ed25519 signature checks per committed transaction (1 is
    the floor: each signature checked once), blocks executed per final block (1: each executed once, whether
    proposed or validated), and copies of each tx batch and each consensus message the mesh delivered to it."""
    work = status.get("work") or {}
    messages = (status.get("gossip") or {}).get("messages") or {}
    txs = next((count for topic, count in messages.items() if topic.endswith("/txs/1")), None)
    consensus = next((count for topic, count in messages.items() if topic.endswith("/consensus/1")), None)
    height = status.get("height") or 0

    def ratio(part: object, whole: object) -> float | None:
        return round(part / whole, 2) if isinstance(part, int) and isinstance(whole, int) and whole else None

    return {
        "signature_checks_per_tx": ratio(work.get("signature_checks"), committed),
        "executions_per_block": ratio(work.get("block_executions"), height),
        "tx_batch_copies": ratio(txs["received"], txs["judged"]) if txs else None,
        # Proposals and votes still travel through gossipsub's mesh (a relay is what carries them past a dead link).
        "consensus_copies": ratio(consensus["received"], consensus["judged"]) if consensus else None,
    }


def ed25519_verify_s(txs: Sequence[Tx], rounds: int = 3) -> float:
    """CPU seconds one Ed25519 transaction-signature check takes in this process now (the check a node makes, via
    `Tx.verify_signature`): the unit node CPU per transaction is expressed in, so the ratio carries over between a
    busy and an idle machine. The best of a few rounds, each over every transaction given."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for tx in txs:
            if not tx.verify_signature():
                raise AssertionError("a presigned transaction does not verify")
        best = min(best, (time.process_time() - started) / len(txs))
    return best


def _count_tracebacks(log: Path) -> int:
    try:
        with log.open("rb") as f:
            return sum(1 for line in f if b"Traceback (most recent call last)" in line)
    except OSError:
        return -1


def _cpu_seconds(cluster: Cluster) -> list[float]:
    out = []
    for record in cluster.records.values():
        try:
            times = psutil.Process(record.pid).cpu_times()
            out.append(times.user + times.system)
        except (psutil.Error, TypeError):
            out.append(0.0)
    return out


COLUMNS = (
    "offered_tps",
    "committed_tps",
    "p50_final_s",
    "p99_final_s",
    "lost",
    "rejected",
    "final_heights",
    "node_cpu_ms_per_tx",
    "ed25519_verify_us",
    "node_cpu_per_tx_in_verifies",
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="ledger throughput and finality on a local cluster")
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load per rate")
    parser.add_argument("--rates", default="1000,2000,3000", help="comma-separated offered tx/s")
    parser.add_argument("--senders", type=int, default=256, help="distinct signing keys")
    parser.add_argument("--json", action="store_true", help="one JSON report per line")
    parser.add_argument(
        "--quick", action="store_true", help=f"one short run: {QUICK_RATE:.0f} tx/s for {QUICK_DURATION_S:.0f} s"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rates, args.duration = str(QUICK_RATE), QUICK_DURATION_S
    for rate in (float(r) for r in args.rates.split(",")):
        report = run_ledger_bench(args.nodes, args.duration, rate, args.senders)
        if args.json:
            print(json.dumps(report), flush=True)
        else:
            print(f"rate {rate:>6.0f} tx/s: " + "  ".join(f"{c}={report.get(c)}" for c in COLUMNS), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
