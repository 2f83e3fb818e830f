"""The commit feed: every block that becomes final on this node is announced once, in height order.

Consumers that used to poll the chain store on their own timers (the EHRs manager, the erasure watcher, clients
waiting until a transaction is final) wait on this feed instead. Two kinds of waiting:

- `committed(after)` follows the chain block by block. A subscriber holds no queue, only the next height it
  wants: announcing a block sets one `asyncio.Event` (O(1), whatever the number of subscribers), and each
  subscriber then reads the blocks it has not seen — from the last few kept in memory, or from the chain store
  when it lags further behind. So a slow subscriber never stalls consensus and costs no memory while it lags; it
  simply reads the blocks it missed from disk, in order, each exactly once.
- `final(tx_hash, timeout_s)` waits for one transaction. Waiters are kept by transaction hash, so a block wakes
  only those whose transactions it holds; each waiter removes itself when it is answered, times out or is
  cancelled, so abandoned waits leave nothing behind.

The feed is fed by the ledger service after a block is stored — a block agreed here and a block imported by
block sync alike (docs/CONSENSUS.md §6, "Announce what is final").
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncGenerator

from consensus.block import Block
from consensus.chainstore import ChainStore
from consensus.execute import Receipt

# Final blocks kept decoded in memory: subscribers at the head, and clients reading the newest blocks over HTTP,
# read them without decoding from LMDB.
RECENT_BLOCKS = 16


class CommitFeed:
    def __init__(self, store: ChainStore) -> None:
        self.store = store
        self._recent: OrderedDict[int, Block] = OrderedDict()
        self._advanced = asyncio.Event()  # set (and replaced) on every announcement
        self._waiters: dict[bytes, set[asyncio.Future[Receipt]]] = {}
        self.subscribers = 0

    @property
    def waiters(self) -> int:
        """Transaction waits in progress (for the status page, and for tests that check none are leaked)."""
        return sum(len(futures) for futures in self._waiters.values())

    def announce(self, block: Block) -> None:
        """`block` is final and stored: wake whoever waits for it. Never blocks and never awaits."""
        self._recent[block.height] = block
        while len(self._recent) > RECENT_BLOCKS:
            self._recent.popitem(last=False)
        for tx in block.txs:
            futures = self._waiters.get(tx.hash)
            if not futures:
                continue
            receipt = self.store.get_receipt(tx.hash)
            if receipt is None:  # cannot happen for a stored block; the waiter then times out rather than lies
                continue
            for future in futures:
                if not future.done():
                    future.set_result(receipt)
        # Waiters of the old event wake; new subscribers wait on the new one.
        advanced, self._advanced = self._advanced, asyncio.Event()
        advanced.set()

    def block(self, height: int) -> Block | None:
        """The final block at `height` (recent ones from memory), or None."""
        recent = self._recent.get(height)
        return recent if recent is not None else self.store.get_block(height)

    async def final(self, tx_hash: bytes, timeout_s: float) -> Receipt | None:
        """The receipt of `tx_hash` once it is final here, or None if it is not final within `timeout_s`."""
        receipt = self.store.get_receipt(tx_hash)
        if receipt is not None or timeout_s <= 0:
            return receipt
        future: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(tx_hash, set()).add(future)
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            return None
        finally:
            futures = self._waiters.get(tx_hash)
            if futures is not None:
                futures.discard(future)
                if not futures:
                    del self._waiters[tx_hash]

    def committed(self, after: int | None = None) -> AsyncGenerator[Block, None]:
        """Every final block above height `after` (default: the head at this call), in order, each once."""
        return self._follow((self.store.height if after is None else after) + 1)

    async def _follow(self, next_height: int) -> AsyncGenerator[Block, None]:
        self.subscribers += 1
        try:
            while True:
                advanced = self._advanced  # taken before reading the head: an announcement in between wakes us
                while next_height <= self.store.height:
                    block = self.block(next_height)
                    if block is None:  # not stored (cannot happen below the head): wait for the next announcement
                        advanced = self._advanced
                        break
                    yield block
                    next_height += 1
                await advanced.wait()
        finally:
            self.subscribers -= 1
