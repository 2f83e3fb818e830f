"""Content-store throughput in process: `add` and `cat` MB/s beside the raw ceilings measured in the same run.

- add: `ObjectStore.add_stream` (chunking, sha256 per block, dag-pb nodes, pack appends, then one pack
  fdatasync and one LMDB commit with the pin) fed 1 MiB pieces from memory;
- add ceiling: sha256 of each 256 KiB chunk + write to a plain file + one fsync at the end: the least work any
  durable content-addressed add must do, synced at the same granularity as the store (once per file);
- cat: `ObjectStore.cat` (DAG walk, every block re-hashed and checked);
- cat ceiling: read the plain file back in 256 KiB pieces + sha256 of each.
Each run adds new random bytes to one store per size in a temporary directory, timed inside one running event
loop (loop and thread-pool start-up not counted). The ceiling's files are kept until the size is done, as the
store keeps its packs: on this VM, memory the page cache has not used before is several times slower to write
into than memory it recycles, so a ceiling that deleted its file each run would recycle its pages while the
store had to take fresh ones. Which of the two goes first alternates between runs. Printed: the median MB/s
of the runs, and the median of the per-run ratios (each ratio pairs a store run with the ceiling run next to
it, which cancels much of the machine's load swings).

With `--http`, the same sizes also go through the CLI code (`ehrnet add` / `ehrnet cat`: node/cli/storage.py) to
a store served by `storage_routes` in a separate process on 127.0.0.1, streamed both ways.

    .venv/bin/python -m bench.store_throughput [--sizes-mb 1 100] [--repeat 5] [--dir /tmp] [--http]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

from storage.blockstore import Blockstore
from storage.importer import CHUNK_SIZE
from storage.objects import BATCH_BYTES, ObjectStore

MB = 1_000_000
PIECE = 1 << 20


def ceiling_add(data: bytes, directory: Path) -> float:
    path = directory / "raw.bin"
    started = time.perf_counter()
    with path.open("wb") as handle:
        view = memoryview(data)
        for start in range(0, len(data), CHUNK_SIZE):
            chunk = view[start : start + CHUNK_SIZE]
            hashlib.sha256(chunk).digest()
            handle.write(chunk)
        handle.flush()
        os.fsync(handle.fileno())
    return time.perf_counter() - started


def ceiling_cat(directory: Path) -> float:
    started = time.perf_counter()
    with (directory / "raw.bin").open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            hashlib.sha256(chunk).digest()
    return time.perf_counter() - started


async def _pieces(data: bytes) -> AsyncIterator[memoryview]:
    # Views, not copies: the ceiling reads the same buffer without copying it either.
    view = memoryview(data)
    for start in range(0, len(data), PIECE):
        yield view[start : start + PIECE]


async def store_add_cat(data: bytes, objects: ObjectStore) -> tuple[float, float]:
    started = time.perf_counter()
    root = await objects.add_stream(_pieces(data))
    added = time.perf_counter() - started
    started = time.perf_counter()
    total = sum(len(leaf) for leaf in objects.cat(root))
    catted = time.perf_counter() - started
    assert total == len(data)
    return added, catted


async def measure(sizes_mb: list[int], repeat_count: int, where: Path | None, batch_bytes: int) -> None:
    await asyncio.to_thread(lambda: None)  # start the worker thread pool outside the timings
    print(f"load average {os.getloadavg()[0]:.2f}; median of {repeat_count} runs")
    print("size    add MB/s  ceiling MB/s  add/ceiling |  cat MB/s  ceiling MB/s  cat/ceiling")
    for size_mb in sizes_mb:
        runs: dict[str, list[float]] = {"add": [], "cat": [], "raw_add": [], "raw_cat": []}
        with tempfile.TemporaryDirectory(dir=where) as tmp:
            # One store per size, as on a node: each repeat adds new random bytes to it (no deduplication).
            objects = ObjectStore(Blockstore(Path(tmp) / "store"), batch_bytes)
            for repeat in range(repeat_count):
                data = os.urandom(size_mb * MB)
                raw_dir = Path(tmp) / f"raw{repeat}"
                raw_dir.mkdir()
                if repeat % 2:
                    added, catted = await store_add_cat(data, objects)
                runs["raw_add"].append(ceiling_add(data, raw_dir))
                runs["raw_cat"].append(ceiling_cat(raw_dir))
                if not repeat % 2:
                    added, catted = await store_add_cat(data, objects)
                runs["add"].append(added)
                runs["cat"].append(catted)
            objects.blocks.close()
        rate = {name: size_mb / statistics.median(times) for name, times in runs.items()}
        # Ratios of rates = inverse ratios of times, run by run.
        add_ratio = statistics.median(r / a for a, r in zip(runs["add"], runs["raw_add"], strict=True))
        cat_ratio = statistics.median(r / c for c, r in zip(runs["cat"], runs["raw_cat"], strict=True))
        print(
            f"{size_mb:>4} MB {rate['add']:>9.0f} {rate['raw_add']:>13.0f} {add_ratio:>12.0%} |"
            f" {rate['cat']:>9.0f} {rate['raw_cat']:>13.0f} {cat_ratio:>12.0%}",
            flush=True,
        )


def serve(directory: Path) -> None:
    """Child process: a store behind the HTTP routes on an ephemeral loopback port (printed on stdout)."""
    from aiohttp import web

    from node.store.http_routes import storage_routes

    async def start() -> None:
        app = web.Application(client_max_size=1 << 40)
        app.add_routes(storage_routes(ObjectStore(Blockstore(directory)), lambda request: None))
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(start())


async def measure_http(node: str, sizes_mb: list[int], repeat_count: int, scratch: Path, sink: IO[bytes]) -> None:
    from node.cli.storage import add_file, cat_file

    print("size    http add MB/s  http cat MB/s   (ehrnet add / ehrnet cat code paths, loopback)")
    for size_mb in sizes_mb:
        adds: list[float] = []
        cats: list[float] = []
        for _ in range(repeat_count):
            source = scratch / "upload.bin"
            await asyncio.to_thread(source.write_bytes, os.urandom(size_mb * MB))
            printed = io.StringIO()
            started = time.perf_counter()
            assert await add_file(node, source, out=printed) == 0
            adds.append(time.perf_counter() - started)
            started = time.perf_counter()
            assert await cat_file(node, printed.getvalue().strip(), sink) == 0
            cats.append(time.perf_counter() - started)
        print(
            f"{size_mb:>4} MB {size_mb / statistics.median(adds):>14.0f} {size_mb / statistics.median(cats):>14.0f}",
            flush=True,
        )


def run_http(sizes_mb: list[int], repeat_count: int, where: Path | None) -> None:
    with tempfile.TemporaryDirectory(dir=where) as tmp, open(os.devnull, "wb") as sink:
        command = [sys.executable, "-m", "bench.store_throughput", "--serve", str(Path(tmp) / "node")]
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as server:
            try:
                assert server.stdout is not None
                node = f"http://127.0.0.1:{server.stdout.readline().strip()}"
                asyncio.run(measure_http(node, sizes_mb, repeat_count, Path(tmp), sink))
            finally:
                server.terminate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch-mb", type=int, default=BATCH_BYTES >> 20, help="writer hand-off (MiB)")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the temporary stores")
    parser.add_argument("--http", action="store_true", help="also measure through the HTTP API and CLI code")
    parser.add_argument("--serve", type=Path, metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    asyncio.run(measure(args.sizes_mb, args.repeat, args.dir, args.batch_mb << 20))
    if args.http:
        run_http(args.sizes_mb, args.repeat, args.dir)


if __name__ == "__main__":
    main()
