"""Content-store throughput in process: `add` and `cat` MB/s beside the raw ceilings measured in the same run.

- add: `ObjectStore.add_stream` (chunking, sha256 per block, dag-pb nodes, LMDB commits with fsync every
  4 MiB batch, pin) fed 1 MiB pieces from memory;
- add ceiling: sha256 of each 256 KiB chunk + write to a plain file + one fsync at the end (the least work any
  durable content-addressed add must do);
- cat: `ObjectStore.cat` (DAG walk, every block re-hashed and checked);
- cat ceiling: read the plain file back in 256 KiB pieces + sha256 of each.
Each figure is the best of `--repeat` runs (the least disturbed: the machine is shared); the runs add new random
bytes to one store per size in a temporary directory, timed inside one running event loop (loop and
thread-pool start-up not counted).

    .venv/bin/python -m bench.store_throughput [--sizes-mb 1 100] [--repeat 3] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

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
                runs["raw_add"].append(ceiling_add(data, raw_dir))
                runs["raw_cat"].append(ceiling_cat(raw_dir))
                added, catted = await store_add_cat(data, objects)
                runs["add"].append(added)
                runs["cat"].append(catted)
                (raw_dir / "raw.bin").unlink()
            objects.blocks.close()
        rate = {name: size_mb / min(times) for name, times in runs.items()}
        print(
            f"{size_mb:>4} MB {rate['add']:>9.0f} {rate['raw_add']:>13.0f} {rate['add'] / rate['raw_add']:>12.0%} |"
            f" {rate['cat']:>9.0f} {rate['raw_cat']:>13.0f} {rate['cat'] / rate['raw_cat']:>12.0%}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-mb", type=int, default=BATCH_BYTES >> 20, help="store commit batch (MiB)")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the temporary stores")
    args = parser.parse_args()
    asyncio.run(measure(args.sizes_mb, args.repeat, args.dir, args.batch_mb << 20))


if __name__ == "__main__":
    main()
