"""A `Ledger` (node/ledger/protocol.py) for unit tests: a real chain store and a real commit feed, no consensus.

Blocks are made by the test (`import_block`), which stores them and announces them on the feed as the ledger
service does; submitted transactions are collected, not gossiped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from consensus.block import Block, Commit
from consensus.chainstore import ChainStore
from consensus.execute import Receipt, Registry
from consensus.genesis import Genesis
from consensus.state import get_nonce
from consensus.tx import Tx, decode_tx
from node.ledger.commit_feed import CommitFeed
from node.ledger.protocol import Ledger


class StoreLedger:
    def __init__(self, genesis: Genesis, store: ChainStore) -> None:
        self.genesis = genesis
        self.chain_id = genesis.chain_id
        self.store = store
        self.feed = CommitFeed(store)
        self.submitted: list[Tx] = []

    def import_block(self, block: Block, commit: Commit, registry: Registry) -> None:
        self.store.import_block(block, commit, registry)
        self.feed.announce(block)

    def submit_tx(self, raw: bytes) -> Tx:
        tx = decode_tx(raw, chain_id=self.chain_id, max_bytes=self.genesis.params.max_tx_bytes)
        self.submitted.append(tx)
        return tx

    async def durable(self) -> None:
        pass

    def next_nonce(self, address: bytes) -> int:
        mine = [tx for tx in self.submitted if tx.address == address]
        return self.nonce_of(address) + sum(1 for tx in mine if self.pending(tx.hash))

    def nonce_of(self, address: bytes) -> int:
        return get_nonce(self.store.get_value, address)

    def pending(self, tx_hash: bytes) -> bool:
        return any(tx.hash == tx_hash for tx in self.submitted) and self.store.tx_location(tx_hash) is None

    def final_block(self, height: int) -> Block | None:
        return self.feed.block(height)

    async def final(self, tx_hash: bytes, timeout_s: float) -> Receipt | None:
        return await self.feed.final(tx_hash, timeout_s)

    def committed(self, after: int | None = None) -> AsyncIterator[Block]:
        return self.feed.committed(after)


def _implements_the_protocol(ledger: StoreLedger) -> Ledger:
    return ledger  # mypy checks here that StoreLedger is a Ledger
