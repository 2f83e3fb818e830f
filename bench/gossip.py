"""Gossip delivery across a real 4-node cluster: latency p50/p99 and the highest lossless publish rate.

Each node process publishes numbered probe messages stamped with their send time (one machine, one clock);
receivers record arrival times. Run: `.venv/bin/python -m bench.gossip [--nodes 4] [--json]`.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from node.client import NodeClient
from node.cluster.conditions import wait_until
from node.cluster.local import Cluster
from node.cluster.running import operator_token, running_cluster


def _operator(cluster: Cluster, name: str, timeout_s: float = 10.0) -> NodeClient:
    return NodeClient.connect(cluster.records[name].http_url, operator_token(cluster, name), timeout_s)


def publish(cluster: Cluster, name: str, count: int, rate: float) -> dict[str, Any]:
    return _operator(cluster, name, timeout_s=600).probe_publish(count, rate)


def received(cluster: Cluster, name: str, since_ns: int) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = _operator(cluster, name).probe_received(since_ns)["records"]
    return records


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def warm_up(cluster: Cluster) -> None:
    names = list(cluster.records)
    ids = {n: cluster.records[n].peer_id for n in names}

    def meshed() -> bool:
        since = time.time_ns()
        for n in names:
            publish(cluster, n, 1, 100)
        time.sleep(0.3)
        return all(
            {r["origin"] for r in received(cluster, rcv, since)} >= {ids[o] for o in names if o != rcv} for rcv in names
        )

    wait_until(meshed, timeout=30, interval=0.5, what="gossip mesh")


def run_round(cluster: Cluster, publishers: list[str], count: int, rate: float) -> tuple[int, int, list[float], float]:
    """Every publisher sends `count` messages at `rate`/s. Returns (expected, delivered, latencies_s, achieved)."""
    names = list(cluster.records)
    since = time.time_ns()
    with concurrent.futures.ThreadPoolExecutor(len(publishers)) as pool:
        results = dict(zip(publishers, pool.map(lambda n: publish(cluster, n, count, rate), publishers), strict=True))
    ranges = {cluster.records[p].peer_id: (r["first_seq"], r["last_seq"]) for p, r in results.items()}
    expected = sum(count * (len(names) - 1) for _ in publishers)
    achieved = min(count / max(r["seconds"], 1e-9) for r in results.values())

    def collect() -> tuple[int, list[float]]:
        delivered, latencies = 0, []
        for rcv in names:
            seen = set()
            for rec in received(cluster, rcv, since):
                span = ranges.get(rec["origin"])
                if span and span[0] <= rec["seq"] <= span[1] and (rec["origin"], rec["seq"]) not in seen:
                    seen.add((rec["origin"], rec["seq"]))
                    latencies.append((rec["received_ns"] - rec["sent_ns"]) / 1e9)
            delivered += len(seen)
        return delivered, latencies

    # Wait for stragglers, but not forever: a dropped message never arrives.
    deadline = time.monotonic() + 5
    delivered, latencies = collect()
    while delivered < expected and time.monotonic() < deadline:
        time.sleep(0.25)
        delivered, latencies = collect()
    return expected, delivered, latencies, achieved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=2.0, help="duration of each rate step")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report: dict[str, Any] = {"nodes": args.nodes}
    with tempfile.TemporaryDirectory() as tmp, running_cluster(Path(tmp), n=args.nodes) as cluster:
        warm_up(cluster)
        names = list(cluster.records)
        expected, delivered, latencies, _ = run_round(cluster, names, 100, 20.0)
        report["latency"] = {
            "messages": delivered,
            "lost": expected - delivered,
            "p50_ms": round(1000 * statistics.median(latencies), 2),
            "p99_ms": round(1000 * percentile(latencies, 0.99), 2),
        }
        steps: list[dict[str, Any]] = []
        # Rates double until the first lossy step: past saturation py-libp2p's queues drop and scores sour, so
        # higher steps would measure the damage, not the capacity.
        for label, publishers in (("one publisher", names[:1]), ("all publishers", names)):
            for rate in (25, 50, 100, 200, 400, 800, 1600):
                count = int(rate * args.seconds)
                expected, delivered, latencies, achieved = run_round(cluster, publishers, count, rate)
                steps.append(
                    {
                        "publishers": label,
                        "target_rate_per_publisher": rate,
                        "achieved_rate_per_publisher": round(achieved, 1),
                        "expected": expected,
                        "delivered": delivered,
                        "lossless": delivered == expected,
                        "p99_ms": round(1000 * percentile(latencies, 0.99), 2) if latencies else None,
                    }
                )
                if delivered < expected:
                    break
        report["rate_steps"] = steps
        for label in ("one publisher", "all publishers"):
            ok = [s for s in steps if s["publishers"] == label and s["lossless"]]
            best = max(ok, key=lambda s: s["achieved_rate_per_publisher"]) if ok else None
            report[f"max_lossless_rate_{label.replace(' ', '_')}"] = (
                best["achieved_rate_per_publisher"] * (1 if label == "one publisher" else len(names)) if best else 0
            )
    if args.json:
        print(json.dumps(report, indent=2))
        return
    lat = report["latency"]
    print(f"gossip on {args.nodes} node processes (loopback, Noise + yamux, gossipsub v1.1)")
    print(
        f"latency: p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms over {lat['messages']} deliveries, lost {lat['lost']}"
    )
    for s in steps:
        print(
            f"  {s['publishers']:<15} target {s['target_rate_per_publisher']:>5}/s achieved "
            f"{s['achieved_rate_per_publisher']:>7}/s  delivered {s['delivered']}/{s['expected']}  p99 {s['p99_ms']} ms"
        )
    print(f"highest lossless rate, one publisher: {report['max_lossless_rate_one_publisher']:.0f} msg/s")
    print(f"highest lossless rate, all publishers (aggregate): {report['max_lossless_rate_all_publishers']:.0f} msg/s")


if __name__ == "__main__":
    main()
