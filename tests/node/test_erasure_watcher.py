"""The erasure watcher acts on every erasure event at least once, and a restart resumes where it left off."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

from consensus.execute import Event, Receipt
from node.erasure import ErasureWatcher
from node.ledger_service import LedgerService
from tests.harness import await_until


class FakeChain:
    """Receipts by height; counts how often each height is read."""

    def __init__(self, erasures: dict[int, bytes], height: int) -> None:
        self.erasures = erasures
        self.height = height
        self.reads: dict[int, int] = {}

    def get_receipts(self, height: int) -> list[Receipt]:
        self.reads[height] = self.reads.get(height, 0) + 1
        uid = self.erasures.get(height)
        if uid is None:
            return [Receipt(b"\x00" * 32, 0, 0)]
        event = Event("erasure", {"data": {"uid": uid, "cids": [f"cid-of-{uid.hex()}"]}})
        return [Receipt(b"\x01" * 32, 0, 0, (event,))]


class FakeLedger:
    def __init__(self, chain: FakeChain, chain_id: str = "ehrnet-test") -> None:
        self.store = chain
        self.chain_id = chain_id


@asynccontextmanager
async def watching(chain: FakeChain, cursor: Path, chain_id: str = "ehrnet-test") -> Any:
    seen: list[tuple[bytes, list[str]]] = []
    watcher = ErasureWatcher(
        cast(LedgerService, FakeLedger(chain, chain_id)), [lambda uid, cids: seen.append((uid, cids))], cursor
    )
    watcher.poll_s = 0.01
    task = asyncio.create_task(watcher.run())
    try:
        yield watcher, seen
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _heights(n: int) -> Iterator[int]:
    return iter(range(1, n + 1))


async def test_every_erasure_is_handled_once_in_block_order(tmp_path: Path) -> None:
    chain = FakeChain({3: b"\xaa", 450: b"\xbb"}, height=500)
    async with watching(chain, tmp_path / "erasure.cursor") as (watcher, seen):
        await await_until(lambda: watcher.scanned_to == 500, 5, what="the watcher reaches the head")
        assert seen == [(b"\xaa", ["cid-of-aa"]), (b"\xbb", ["cid-of-bb"])]
        chain.erasures[501] = b"\xcc"
        chain.height = 501
        await await_until(lambda: len(seen) == 3, 5, what="a new block's erasure is handled")
    assert all(chain.reads[h] == 1 for h in _heights(501))


async def test_a_restart_resumes_from_the_cursor_instead_of_height_zero(tmp_path: Path) -> None:
    cursor = tmp_path / "erasure.cursor"
    chain = FakeChain({3: b"\xaa"}, height=300)
    async with watching(chain, cursor) as (watcher, _):
        await await_until(lambda: watcher.scanned_to == 300, 5, what="the first run reaches the head")
    assert json.loads(cursor.read_text()) == {"chain_id": "ehrnet-test", "height": 300}
    chain.reads.clear()
    chain.erasures[301] = b"\xbb"
    chain.height = 301
    async with watching(chain, cursor) as (watcher, seen):
        await await_until(lambda: watcher.scanned_to == 301, 5, what="the restarted watcher reaches the head")
        assert seen == [(b"\xbb", ["cid-of-bb"])]
    assert list(chain.reads) == [301]


async def test_a_damaged_cursor_or_another_chain_rescans_from_the_start(tmp_path: Path) -> None:
    cursor = tmp_path / "erasure.cursor"
    chain = FakeChain({2: b"\xaa"}, height=10)
    for content in ("{not json", json.dumps({"chain_id": "another-chain", "height": 10}), '{"height": -4}'):
        cursor.write_text(content)
        async with watching(chain, cursor) as (watcher, seen):
            await await_until(lambda: watcher.scanned_to == 10, 5, what="a rescan reaches the head")
            assert seen == [(b"\xaa", ["cid-of-aa"])], content
