"""What the default replication costs an add: `POST /objects` with r = 2 (answered once a second node holds the
object) against r = 1 (answered once it is durable on the node that took it), in the same run, on a 4-node
cluster of real processes.

The two kinds alternate, each on fresh random bytes, so load swings touch both (after one untimed add of each:
the first adds of a fresh cluster took seconds longer); printed per size: the median seconds of each, their
ratio, and the holders each r = 2 answer reported (2, or 3 when the origin is not among the 2 closest).

    .venv/bin/python -m bench.store_replicated_add [--sizes-mb 1 20] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from node.client import AsyncNodeClient
from node.cluster.config import generate_network
from node.cluster.running import start_cluster

MB = 1_000_000


async def timed_add(node: AsyncNodeClient, data: bytes, replication: int) -> tuple[float, int]:
    started = time.perf_counter()
    answer = await node.add(data, replication=replication)  # a refusal raises NodeRefused with the reason
    return time.perf_counter() - started, int(answer["holders"])


async def measure(node: str, sizes_mb: list[int], repeat: int) -> None:
    print("size   | r=1 add s  r=2 add s  r=2/r=1 | holders reported by r=2   (medians)")
    async with AsyncNodeClient.connect(node) as client:
        for replication in (1, 2):  # untimed: the first adds of a fresh cluster pay for streams and warm-up
            await timed_add(client, os.urandom(MB), replication)
        for size_mb in sizes_mb:
            single: list[float] = []
            double: list[float] = []
            holders: list[int] = []
            for attempt in range(repeat):
                order = (1, 2) if attempt % 2 == 0 else (2, 1)
                for replication in order:
                    seconds, held = await timed_add(client, os.urandom(size_mb * MB), replication)
                    (single if replication == 1 else double).append(seconds)
                    if replication == 2:
                        holders.append(held)
            one, two = statistics.median(single), statistics.median(double)
            print(f"{size_mb:>4} MB | {one:>9.3f} {two:>10.3f} {two / one:>8.2f} | {holders}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[1, 20])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        cluster = start_cluster(generate_network(4), Path(tmp) / "cluster", timeout=60)
        try:
            asyncio.run(measure(cluster.records["node1"].http_url, args.sizes_mb, args.repeat))
        finally:
            cluster.down(timeout=5)


if __name__ == "__main__":
    main()
