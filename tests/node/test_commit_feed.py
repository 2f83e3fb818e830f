"""The commit feed over a real chain store: each final block is announced once and in order to every
subscriber, a lagging subscriber reads what it missed from the store, `final` is woken by the block holding its
transaction, and waits that time out or are cancelled leave nothing behind."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from consensus.block import Block
from consensus.chainstore import ChainStore
from node.ledger.commit_feed import RECENT_BLOCKS, CommitFeed
from tests.consensus.ledger_helpers import USER_KEYS, Chain, record
from tests.harness import await_until


class World:
    def __init__(self, path: Path) -> None:
        self.chain = Chain()
        self.store = ChainStore(path, self.chain.genesis, initial_map_size=1 << 22)
        self.feed = CommitFeed(self.store)
        self.nonce = 0

    def add(self, n_txs: int = 0) -> Block:
        txs = [record(USER_KEYS[0], self.nonce + i, v=bytes([i])) for i in range(n_txs)]
        self.nonce += n_txs
        block, _, commit = self.chain.add_block(txs)
        self.store.import_block(block, commit, self.chain.registry)
        self.feed.announce(block)
        return block


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path / "chain")
    yield w
    w.store.close()


async def _collect(world: World, after: int | None, until: int, into: list[int], pause: float = 0.0) -> None:
    async for block in world.feed.committed(after):
        into.append(block.height)
        if pause:
            await asyncio.sleep(pause)  # a slow subscriber
        if block.height >= until:
            return


async def test_every_subscriber_sees_each_final_block_once_in_order(world: World) -> None:
    world.add()
    fast: list[int] = []
    slow: list[int] = []
    from_start: list[int] = []
    tasks = [
        asyncio.create_task(_collect(world, None, 40, fast)),
        asyncio.create_task(_collect(world, None, 40, slow, pause=0.01)),
        asyncio.create_task(_collect(world, 0, 40, from_start)),
    ]
    await asyncio.sleep(0)  # subscribed at height 1
    for _ in range(39):
        world.add(n_txs=1)
        if world.store.height % 7 == 0:
            await asyncio.sleep(0)  # sometimes the subscribers run between blocks, sometimes not
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert fast == list(range(2, 41))
    assert slow == list(range(2, 41))  # fell more than RECENT_BLOCKS behind: read the rest from the store
    assert from_start == list(range(1, 41))
    assert world.feed.subscribers == 0


async def test_announcing_never_waits_for_subscribers_and_keeps_memory_bounded(world: World) -> None:
    stuck = world.feed.committed()

    async def next_block() -> Block:
        return await anext(stuck)

    first = asyncio.create_task(next_block())  # subscribed, then never reads again
    world.add()
    assert (await first).height == 1
    for _ in range(3 * RECENT_BLOCKS):
        world.add()  # returns without awaiting anything
    assert len(world.feed._recent) == RECENT_BLOCKS
    # The lagging subscriber still gets every block, the old ones from the store.
    heights = [(await next_block()).height for _ in range(3 * RECENT_BLOCKS)]
    assert heights == list(range(2, 3 * RECENT_BLOCKS + 2))
    await stuck.aclose()
    assert world.feed.subscribers == 0


async def test_final_is_woken_by_the_block_that_holds_the_transaction(world: World) -> None:
    tx = record(USER_KEYS[0], 0, v=b"\x00")
    waiter = asyncio.create_task(world.feed.final(tx.hash, 10))
    await await_until(lambda: world.feed.waiters == 1, 5, what="the wait is registered")
    world.add()  # an empty block: not this one
    await asyncio.sleep(0)
    assert not waiter.done()
    world.add(n_txs=1)
    receipt = await asyncio.wait_for(waiter, 1)  # woken at once, far before its 10 s
    assert receipt is not None and receipt.ok
    assert world.feed.waiters == 0
    # Already final: answered without waiting.
    assert await world.feed.final(tx.hash, 0) == receipt


async def test_timed_out_and_cancelled_waits_leave_nothing_behind(world: World) -> None:
    unknown = bytes(32)
    assert await world.feed.final(unknown, 0.05) is None
    assert await world.feed.final(unknown, 0) is None
    waits = [asyncio.create_task(world.feed.final(bytes([i]) * 32, 30)) for i in range(200)]
    await await_until(lambda: world.feed.waiters == 200, 5, what="200 waits registered")
    for wait in waits:
        wait.cancel()
    await asyncio.gather(*waits, return_exceptions=True)
    assert world.feed.waiters == 0 and world.feed._waiters == {}
