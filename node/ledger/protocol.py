"""The `Ledger` protocol: what the rest of the node needs of its ledger, and nothing more.

The EHRs manager, the erasure watcher, edge records and the HTTP routes depend on this, not on the concrete
`LedgerService`, so each can be tested against a small fake (over a real chain store) and none can reach into
consensus internals. Four things: submit a transaction, read the last final state, wait until a transaction is
final, and follow final blocks as they come (node/ledger/commit_feed.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from consensus.block import Block
from consensus.chainstore import ChainStore
from consensus.execute import Receipt
from consensus.genesis import Genesis
from consensus.tx import Tx


class Ledger(Protocol):
    @property
    def chain_id(self) -> str: ...

    @property
    def genesis(self) -> Genesis: ...

    @property
    def store(self) -> ChainStore:
        """The final chain, for reads only: contract views on the last final state, receipts, blocks, events.
        Open for the ledger's whole life (writing it is the ledger's own business)."""
        ...

    # ---- submit ----------------------------------------------------------------------------------------

    def submit_tx(self, raw: bytes) -> Tx:
        """Admit a signed transaction to the mempool and gossip it; raises consensus.errors.TxError naming the
        problem (MempoolFullError when the node is too busy to take it now)."""
        ...

    async def durable(self) -> None:
        """Return once every transaction admitted so far is on disk (raises LedgerError if that write failed)."""
        ...

    def next_nonce(self, address: bytes) -> int:
        """The nonce a new transaction of `address` should carry, counting its pending transactions."""
        ...

    # ---- read ------------------------------------------------------------------------------------------

    def nonce_of(self, address: bytes) -> int:
        """The nonce of `address` in the last final state."""
        ...

    def pending(self, tx_hash: bytes) -> bool:
        """Whether `tx_hash` waits in this node's mempool (admitted, not final yet)."""
        ...

    def final_block(self, height: int) -> Block | None:
        """The final block at `height`, or None above the head."""
        ...

    # ---- wait for what becomes final -----------------------------------------------------------------

    async def final(self, tx_hash: bytes, timeout_s: float) -> Receipt | None:
        """The receipt of `tx_hash` once it is final on this node, or None if it is not final within
        `timeout_s` (woken by the commit feed, no polling)."""
        ...

    def committed(self, after: int | None = None) -> AsyncIterator[Block]:
        """Every final block above height `after` (default: the head now), in order, each exactly once."""
        ...
