"""Block-exchange fetch throughput without the network: the ceiling the libp2p path can approach.

Three provider stores hold a file; `BlockFetcher.cat` fetches it through the real wire codecs
(`encode_get_blocks` → `decode_get_blocks` → `serve_get_blocks` → `encode_blocks` → `decode_blocks`), verifies
every block and stores it in the fetching node's blockstore (the `sink`), as a node does on `GET /objects` for a
file it does not hold. Only the transport (a libp2p stream) is replaced by a function call.

    .venv/bin/python -m bench.store_fetch [--size-mb 100] [--repeat 3] [--window 32] [--per-request 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from storage.blockstore import Blockstore
from storage.dht.keyspace import Contact
from storage.exchange import (
    Blocks,
    GetBlocks,
    decode_blocks,
    decode_get_blocks,
    encode_blocks,
    encode_get_blocks,
    serve_get_blocks,
)
from storage.fetch import BlockFetcher
from storage.importer import Block
from storage.objects import ObjectStore

MB = 1_000_000


async def fetch_once(size_mb: int, window: int, per_request: int, where: Path) -> float:
    data = os.urandom(size_mb * MB)
    providers: dict[bytes, ObjectStore] = {}
    root = None
    for i in range(3):
        store = ObjectStore(Blockstore(where / f"provider{i}"))
        root = store.add_bytes(data)
        providers[f"provider-{i}".encode()] = store
    assert root is not None
    fetching = ObjectStore(Blockstore(where / "fetcher"))

    async def request(peer: Contact, ask: GetBlocks) -> Blocks:
        served = serve_get_blocks(decode_get_blocks(encode_get_blocks(ask)), providers[peer.peer_id].blocks.get)
        return decode_blocks(encode_blocks(served))

    async def sink(blocks: list[Block]) -> None:
        await asyncio.to_thread(fetching.blocks.put_many, blocks, True)

    fetcher = BlockFetcher(request, window=window, sink=sink, per_request=per_request)
    started = time.perf_counter()
    total = 0
    async for piece in fetcher.cat(root, [Contact(peer_id) for peer_id in providers]):
        total += len(piece)
    elapsed = time.perf_counter() - started
    assert total == len(data)
    return elapsed


async def main_async(size_mb: int, repeat: int, window: int, per_request: int) -> None:
    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            times.append(await fetch_once(size_mb, window, per_request, Path(tmp)))
    rate = size_mb / min(times)
    print(f"{size_mb} MB from 3 providers through the wire codecs: {rate:.0f} MB/s (best of {repeat})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--per-request", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main_async(args.size_mb, args.repeat, args.window, args.per_request))


if __name__ == "__main__":
    main()
