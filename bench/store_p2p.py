"""Content-store throughput against real node processes, beside the in-process store and the raw ceiling, all
measured in the same run.

Starts a 2-node cluster (`ehrnet cluster` code, real processes on loopback) and measures, per size:
- raw: sha256 per 256 KiB chunk + write + fsync (add ceiling), read + sha256 (cat ceiling), as in
  bench/store_throughput.py;
- in process: `ObjectStore.add_stream` / `cat` in this process;
- CLI code: `node.cli.storage.add_file` / `cat_file` (what `ehrnet add` / `ehrnet cat` run) against node1's HTTP API;
- CLI process: `ehrnet add FILE --node URL` / `ehrnet cat CID --node URL` as subprocesses (includes the
  interpreter's start-up, ~0.3–0.5 s, which dominates small files);
- cross-node: `GET /objects/{cid}` on node2 for a file only node1 holds: node2 finds node1 through the DHT,
  fetches every block over libp2p (`/ehrnet/blocks/1.0.0`: Noise + yamux), verifies and stores it, and streams
  the file to the client as it arrives.
Best of `--repeat` runs each (the machine is shared).

    .venv/bin/python -m bench.store_p2p [--sizes-mb 1 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import io
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from bench.store_throughput import ceiling_add, ceiling_cat, store_add_cat
from node.cli.storage import add_file, cat_file
from node.client import AsyncNodeClient
from node.cluster.config import generate_network
from node.cluster.running import start_cluster
from storage.blockstore import Blockstore
from storage.objects import ObjectStore

MB = 1_000_000


async def fetched_bytes(node: str, cid: str) -> int:
    """`GET /objects/{cid}` streamed through the client and counted, nothing kept."""
    total = 0

    def count(chunk: bytes) -> None:
        nonlocal total
        total += len(chunk)

    async with AsyncNodeClient.connect(node) as client:
        await client.cat(cid, count)
    return total


def cli(*args: str) -> tuple[float, bytes]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "node.cli", *args], capture_output=True, check=True)
    return time.perf_counter() - started, done.stdout


class _Discard(io.BytesIO):
    """A sink that keeps nothing (the CLI code writes the file to it)."""

    def write(self, data: bytes) -> int:  # type: ignore[override]
        return len(data)


def _note(runs: dict[str, list[float]], name: str, seconds: float) -> None:
    runs.setdefault(name, []).append(seconds)


class PeakRss:
    """Samples a process's resident memory in a thread while a block runs; `growth` = peak − start (bytes)."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self._stop = threading.Event()
        self.start = self.peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return int(self.peak - self.start)


async def measure(sizes_mb: list[int], repeat: int, tmp: Path, node1: str, node2: str, node2_pid: int) -> None:
    await asyncio.to_thread(lambda: None)
    print(
        "size   | raw add  store add  cli-code add  cli add | raw cat  store cat  cli-code cat  cli cat |"
        " cross-node fetch   (MB/s, best of runs)"
    )
    for size_mb in sizes_mb:
        runs: dict[str, list[float]] = {}
        note = functools.partial(_note, runs)
        objects = ObjectStore(Blockstore(tmp / f"store{size_mb}"))
        sink = _Discard()
        for attempt in range(repeat):
            data = os.urandom(size_mb * MB)
            raw = tmp / f"raw{size_mb}-{attempt}"
            raw.mkdir()
            note("raw_add", ceiling_add(data, raw))
            note("raw_cat", ceiling_cat(raw))
            added, catted = await store_add_cat(data, objects)
            note("store_add", added)
            note("store_cat", catted)
            source = raw / "raw.bin"
            printed = io.StringIO()
            started = time.perf_counter()
            # r = 1 throughout: the default (2) would also time node2 taking a copy, and the cross-node fetch
            # below needs a file node2 does not hold yet.
            assert await add_file(node1, source, replication=1, out=printed) == 0
            note("code_add", time.perf_counter() - started)
            cid = printed.getvalue().strip()
            started = time.perf_counter()
            assert await cat_file(node1, cid, sink) == 0
            note("code_cat", time.perf_counter() - started)
            # A fresh file for the CLI processes and the cross-node fetch (node2 must not hold it yet).
            source.write_bytes(os.urandom(size_mb * MB))
            seconds, out = cli("add", str(source), "--node", node1, "--replication", "1")
            note("cli_add", seconds)
            cid = out.decode().strip()
            note("cli_cat", cli("cat", cid, "--node", node1)[0])
            started = time.perf_counter()
            with PeakRss(node2_pid) as rss:
                assert await fetched_bytes(node2, cid) == size_mb * MB
            note("fetch", time.perf_counter() - started)
            note("rss_growth", rss.growth / MB)
            source.unlink()
        objects.blocks.close()
        rss_growth = max(runs.pop("rss_growth"))
        r = {name: size_mb / min(times) for name, times in runs.items()}
        print(
            f"{size_mb:>4} MB | {r['raw_add']:>7.0f} {r['store_add']:>10.0f} {r['code_add']:>13.0f}"
            f" {r['cli_add']:>8.1f}"
            f" | {r['raw_cat']:>7.0f} {r['store_cat']:>10.0f} {r['code_cat']:>13.0f} {r['cli_cat']:>8.1f}"
            f" | {r['fetch']:>16.1f}   (node2 RSS grew at most {rss_growth:.0f} MB while fetching)",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = start_cluster(generate_network(2), Path(tmp) / "cluster", timeout=30)
        try:
            names = list(cluster.records)
            node1, node2 = (cluster.records[n].http_url for n in names[:2])
            pid = cluster.records[names[1]].pid
            assert pid is not None
            asyncio.run(measure(args.sizes_mb, args.repeat, Path(tmp), node1, node2, pid))
        finally:
            cluster.down(timeout=5)


if __name__ == "__main__":
    main()
