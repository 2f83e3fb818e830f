"""How fast a dead link is noticed and a healed one reconnected, against the keepalive's documented bound.

Scenarios, each repeated `--reps` times on the same pair of peers:
- pause: two peer processes on loopback (`node/cluster/peer_process.py`: a node's p2p service alone); one is
  SIGSTOPped (its sockets stay open, no FIN) until the other closes the connection, then SIGCONTed;
- cut (root only): the two processes in network namespaces of their own, joined by a veth pair whose ends are
  taken down (no FIN, no reset) and brought back up;
- gate: two p2p services in this process; one blocks the other by peer ID (`P2PHost.set_blocked_peers`), then
  heals (closing is immediate here: only the reconnect is timed).
Baseline in the same run: the pause scenario with the keepalive effectively off (a ping an hour, as py-libp2p
behaves on its own), capped at `--baseline-cap` seconds.

Run: `.venv/bin/python -m bench.keepalive [--reps 3] [--baseline-cap 20] [--json]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import time
from typing import Any

from node.cluster.conditions import WaitTimeout, await_until, wait_until
from node.cluster.peer_process import NamespaceUnavailable, PeerProcess, Side, linked_namespaces, loopback_pair
from node.p2p.bridge import HostConfig
from node.p2p.keepalive import KeepaliveSettings
from node.p2p.peering import BootstrapPeer, PeeringService

OFF_INTERVAL_S = 3600.0


def _connected(first: PeerProcess, second: PeerProcess, a: Side, b: Side) -> bool:
    return first.peers() == [b.peer_id] and second.peers() == [a.peer_id]


def _pause_rounds(reps: int, keepalive_interval_s: float | None = None, cap_s: float = 30.0) -> dict[str, list[float]]:
    a, b = loopback_pair()
    watcher, paused = PeerProcess(a, b, keepalive_interval_s), PeerProcess(b, a, keepalive_interval_s)
    noticed: list[float] = []
    reconnected: list[float] = []
    try:
        for _ in range(reps):
            wait_until(lambda: _connected(watcher, paused, a, b), timeout=60, what="peers connected")
            os.kill(paused.pid, signal.SIGSTOP)
            stopped_at = time.monotonic()
            try:
                wait_until(lambda: not watcher.peers(), timeout=cap_s, interval=0.05, what="pause noticed")
                noticed.append(watcher.last_change_at() - stopped_at)
            except WaitTimeout:
                noticed.append(float("inf"))
            finally:
                os.kill(paused.pid, signal.SIGCONT)
            resumed_at = time.monotonic()
            if noticed[-1] == float("inf"):
                break  # the baseline: nothing to reconnect
            wait_until(lambda: _connected(watcher, paused, a, b), timeout=30, interval=0.05, what="reconnected")
            reconnected.append(max(watcher.last_change_at(), paused.last_change_at()) - resumed_at)
    finally:
        watcher.stop()
        paused.stop()
    return {"noticed_s": noticed, "reconnected_s": reconnected}


def _cut_rounds(reps: int) -> dict[str, list[float]]:
    noticed: list[float] = []
    reconnected: list[float] = []
    with linked_namespaces() as (a, b):
        first, second = PeerProcess(a, b), PeerProcess(b, a)
        try:
            for _ in range(reps):
                wait_until(lambda: _connected(first, second, a, b), timeout=60, what="peers connected")
                cut_at = time.monotonic()
                a.link("down")
                b.link("down")
                wait_until(lambda: not first.peers() and not second.peers(), timeout=30, interval=0.05, what="cut")
                noticed.append(max(first.last_change_at(), second.last_change_at()) - cut_at)
                healed_at = time.monotonic()
                a.link("up")
                b.link("up")
                wait_until(lambda: _connected(first, second, a, b), timeout=30, interval=0.05, what="healed")
                reconnected.append(max(first.last_change_at(), second.last_change_at()) - healed_at)
        finally:
            first.stop()
            second.stop()
    return {"noticed_s": noticed, "reconnected_s": reconnected}


async def _gate_rounds(reps: int) -> dict[str, list[float]]:
    first = PeeringService(HostConfig(seed=os.urandom(32)), [])
    await first.start()
    second = PeeringService(
        HostConfig(seed=os.urandom(32)), [BootstrapPeer("first", first.host.peer_id, first.host.listen_addrs[0])]
    )
    await second.start()
    first.add_bootstrap_peer(BootstrapPeer("second", second.host.peer_id, second.host.listen_addrs[0]))
    runs = [asyncio.create_task(first.run()), asyncio.create_task(second.run())]
    one, two = first.host, second.host
    reconnected: list[float] = []
    try:
        for _ in range(reps):
            await await_until(lambda: two.peer_id in one.connected_peers(), timeout_s=30, what="connected")
            await one.set_blocked_peers({two.peer_id})
            await await_until(lambda: one.peer_id not in two.connected_peers(), timeout_s=10, what="cut off")
            healed_at = time.monotonic()
            await one.set_blocked_peers(set())
            await await_until(lambda: two.peer_id in one.connected_peers(), timeout_s=30, interval=0.005)
            reconnected.append(time.monotonic() - healed_at)
    finally:
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        await second.stop()
        await first.stop()
    return {"reconnected_s": reconnected}


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 2), "max": round(max(values), 2)} if values else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--baseline-cap", type=float, default=20.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    bound = KeepaliveSettings().detection_bound_s
    results: dict[str, Any] = {"detection_bound_s": bound, "reps": args.reps}
    results["pause"] = _pause_rounds(args.reps)
    try:
        results["cut"] = _cut_rounds(args.reps)
    except NamespaceUnavailable as exc:
        results["cut"] = {"skipped": str(exc)}
    results["gate"] = asyncio.run(_gate_rounds(args.reps))
    results["pause_without_keepalive"] = _pause_rounds(1, OFF_INTERVAL_S, cap_s=args.baseline_cap)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"keepalive: ping every 1 s, 2 misses of 2.5 s; documented bound {bound:.1f} s; {args.reps} rounds each")
    print(f"{'scenario':<28} {'noticed median/max (s)':>24} {'/ bound':>8} {'reconnect median/max (s)':>26}")
    for name in ("pause", "cut", "gate", "pause_without_keepalive"):
        row = results[name]
        if "skipped" in row:
            print(f"{name:<28} skipped: {row['skipped']}")
            continue
        noticed, again = _summary(row.get("noticed_s", [])), _summary(row.get("reconnected_s", []))
        if noticed and noticed["max"] == float("inf"):
            noticed_text, ratio = f"not within {args.baseline_cap:.0f}", f"> {args.baseline_cap / bound:.1f}"
        elif noticed:
            noticed_text, ratio = f"{noticed['median']:.2f} / {noticed['max']:.2f}", f"{noticed['median'] / bound:.2f}"
        else:
            noticed_text, ratio = "(immediate)", "-"
        again_text = f"{again['median']:.2f} / {again['max']:.2f}" if again else "-"
        print(f"{name:<28} {noticed_text:>24} {ratio:>8} {again_text:>26}")


if __name__ == "__main__":
    main()
