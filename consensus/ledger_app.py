"""The ledger as the consensus machine's `Application`: blocks are the values consensus decides on.

`ConsensusMachine` (machine.py) treats values as opaque bytes; this adapter makes them encoded blocks:
`propose` builds a block from the mempool on the stored head, `validate` re-executes a proposed block
(Tendermint's valid(v)), `value_hash` is the block hash, and `finalise` persists a decided block with its commit
and updates the mempool. Execution results are cached by block hash, so a block executed to validate it is not
executed again to commit it. Pure apart from the chain store it is given; the wall clock is an input.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

from consensus import actions
from consensus.block import Block, Commit, decode_block, validate_time
from consensus.chainstore import ChainStore
from consensus.errors import BlockError
from consensus.execute import BlockResult, Registry, apply_block, build_block
from consensus.mempool import Mempool

_UNDECODABLE = b"ehrnet/undecodable-block\x00"
T = TypeVar("T")


class LedgerApp:
    def __init__(
        self,
        *,
        store: ChainStore,
        mempool: Mempool,
        registry: Registry,
        proposer: bytes,
        wall_clock_ms: Callable[[], int],
        max_clock_drift_ms: int = 10_000,
        cache_size: int = 16,
    ) -> None:
        self.store, self.mempool, self.registry = store, mempool, registry
        self.proposer = proposer  # this node's validator public key
        self.wall_clock_ms = wall_clock_ms
        self.max_clock_drift_ms = max_clock_drift_ms
        self.cache_size = cache_size
        self._decoded: OrderedDict[bytes, Block | None] = OrderedDict()  # H(value) -> block (None: undecodable)
        self._executed: OrderedDict[bytes, tuple[Block, BlockResult] | None] = OrderedDict()  # None: invalid

    # --- Application protocol ------------------------------------------------------------------------------

    def value_hash(self, value: bytes) -> bytes:
        block = self._decode(value)
        if block is None:
            # Never raises on a peer's garbage: a hash no header can have, so it matches no proposal or vote.
            return hashlib.sha256(_UNDECODABLE + value).digest()
        return block.hash

    def propose(self, height: int, round_: int, now: float) -> bytes:
        head = self.store.head
        if height != head.height + 1:
            raise ValueError(f"asked to propose height {height} but the stored head is {head.height}")
        params = self.store.genesis.params
        candidates = self.mempool.reap(max_bytes=params.max_block_bytes, max_count=params.max_block_txs)
        with self.store.reader() as reader:
            block, result = build_block(
                reader,
                head,
                candidates,
                proposer=self.proposer,
                time_ms=max(self.wall_clock_ms(), head.time_ms + 1),
                params=params,
                registry=self.registry,
            )
        value = block.encode()
        self._remember(self._decoded, hashlib.sha256(value).digest(), block)
        self._remember(self._executed, block.hash, (block, result))
        return value

    def validate(self, height: int, value: bytes) -> bool:
        block = self._decode(value)
        if block is None or height != self.store.height + 1 or block.height != height:
            return False
        return self._execute(block) is not None

    # --- after a decision ----------------------------------------------------------------------------------

    def finalise(self, decided: actions.Commit) -> BlockResult:
        """Persist a decided block with its precommits, drop its txs from the mempool; returns the result whose
        `next_validators` the shell passes to `ConsensusMachine.start_height`."""
        block = self._decode(decided.value)
        if block is None or block.hash != decided.value_hash:
            raise BlockError("decided value is not the block its hash names")
        executed = self._execute(block)
        if executed is None:
            raise BlockError(f"decided block {decided.height} does not execute on the stored head")
        commit = Commit(decided.height, decided.round, decided.value_hash, decided.precommits)
        self.store.commit_block(block, commit, executed[1])
        self.mempool.update(block.txs)
        self._decoded.clear()
        self._executed.clear()
        return executed[1]

    # --- internals -----------------------------------------------------------------------------------------

    def _decode(self, value: bytes) -> Block | None:
        key = hashlib.sha256(value).digest()
        if key in self._decoded:
            return self._decoded[key]
        params = self.store.genesis.params
        try:
            block: Block | None = decode_block(
                value,
                chain_id=self.store.genesis.chain_id,
                max_block_bytes=params.max_block_bytes,
                max_tx_bytes=params.max_tx_bytes,
            )
        except BlockError:
            block = None
        self._remember(self._decoded, key, block)
        return block

    def _execute(self, block: Block) -> tuple[Block, BlockResult] | None:
        if block.hash in self._executed:
            return self._executed[block.hash]
        outcome: tuple[Block, BlockResult] | None
        try:
            validate_time(block.header, self.wall_clock_ms(), self.max_clock_drift_ms)
            with self.store.reader() as reader:
                result = apply_block(
                    reader,
                    block,
                    self.store.head,
                    params=self.store.genesis.params,
                    registry=self.registry,
                    preverified=self.mempool,
                )
            outcome = (block, result)
        except BlockError:
            outcome = None
        self._remember(self._executed, block.hash, outcome)
        return outcome

    def _remember(self, cache: OrderedDict[bytes, T], key: bytes, item: T) -> None:
        cache[key] = item
        while len(cache) > self.cache_size:
            cache.popitem(last=False)
