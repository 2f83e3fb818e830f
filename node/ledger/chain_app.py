"""The chain as the consensus machine sees it: values are encoded blocks (consensus.height_state.Application).

Proposing builds a block from the mempool on the last final state; validating decodes and re-executes a proposed
block on that state. Both cache the execution result by block hash, so the block that becomes final is not
executed a second time when it is committed.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from consensus.block import Block, decode_block, validate_time
from consensus.chainstore import ChainStore
from consensus.errors import LedgerError
from consensus.execute import BlockResult, Registry, apply_block, build_block
from consensus.mempool import Mempool

log = logging.getLogger(__name__)

MAX_CLOCK_DRIFT_MS = 10_000
CACHE_SIZE = 64
# Transactions per proposed block, below the genesis limit: every validator re-executes a proposal before the
# propose timeout (~0.06 ms a tx), so an unbounded backlog must not become one block too slow to check in time.
MAX_PROPOSAL_TXS = 2000


class ChainApp:
    def __init__(
        self,
        store: ChainStore,
        mempool: Mempool,
        registry: Registry,
        proposer: bytes,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.store = store
        self.mempool = mempool
        self.registry = registry
        self.proposer = proposer
        self.clock_ms = clock_ms
        self.params = store.genesis.params
        self._decoded: OrderedDict[bytes, Block] = OrderedDict()  # keyed by the value's own bytes hash
        self._results: OrderedDict[bytes, tuple[Block, BlockResult]] = OrderedDict()  # keyed by block hash
        self.executions = 0  # blocks executed here (built or validated): one per height when the cache holds

    def block_of(self, value: bytes) -> Block:
        """The decoded block of a value (cached; raises LedgerError for a malformed one)."""
        return self._decode(value)

    def remember_encoding(self, value: bytes, block: Block) -> None:
        """`value` is the encoding of `block` (rebuilt from a compact block): skip decoding it again."""
        self._decoded[_fingerprint(value)] = block
        if len(self._decoded) > CACHE_SIZE:
            self._decoded.popitem(last=False)

    def _decode(self, value: bytes) -> Block:
        key = _fingerprint(value)
        block = self._decoded.get(key)
        if block is None:
            block = decode_block(
                value,
                chain_id=self.store.genesis.chain_id,
                max_block_bytes=self.params.max_block_bytes,
                max_tx_bytes=self.params.max_tx_bytes,
            )
            self._decoded[key] = block
            if len(self._decoded) > CACHE_SIZE:
                self._decoded.popitem(last=False)
        return block

    def _remember(self, block: Block, result: BlockResult) -> None:
        self._results[block.hash] = (block, result)
        if len(self._results) > CACHE_SIZE:
            self._results.popitem(last=False)

    # ---- Application ------------------------------------------------------------------------------------

    def value_hash(self, value: bytes) -> bytes:
        try:
            return self._decode(value).hash
        except LedgerError:
            # A peer's garbage never raises here: it gets a hash no header can have, so it matches nothing.
            return hashlib.sha256(b"ehrnet/undecodable-block\x00" + value).digest()

    def propose(self, height: int, round_: int, now: float) -> bytes:
        parent = self.store.head
        if parent.height + 1 != height:
            raise LedgerError(f"asked to propose height {height} on head {parent.height}")
        candidates = self.mempool.reap(
            max_bytes=self.params.max_block_bytes, max_count=min(self.params.max_block_txs, MAX_PROPOSAL_TXS)
        )
        time_ms = max(self.clock_ms(), parent.time_ms + 1)
        self.executions += 1
        with self.store.reader() as reader:
            block, result = build_block(
                reader,
                parent,
                candidates,
                proposer=self.proposer,
                time_ms=time_ms,
                params=self.params,
                registry=self.registry,
            )
        self._remember(block, result)
        encoded = block.encode()
        self.remember_encoding(encoded, block)
        log.debug("proposing height %d round %d with %d txs", height, round_, len(block.txs))
        return encoded

    def validate(self, height: int, value: bytes) -> bool:
        try:
            block = self._decode(value)
        except LedgerError as exc:
            log.info("invalid proposal at height %d: %s", height, exc)
            return False
        if block.height != height:
            return False  # checked before the cache: a block valid at one height is not valid at another
        if block.hash in self._results:
            return True
        parent = self.store.head
        if block.height != height or parent.height + 1 != height:
            return False
        checked = self.mempool.checked  # signatures this node verified already (consensus/checked_txs.py)
        unchecked = [tx.hash for tx in block.txs if tx.hash not in checked]
        try:
            validate_time(block.header, self.clock_ms(), MAX_CLOCK_DRIFT_MS)
            self.executions += 1
            with self.store.reader() as reader:
                result = apply_block(
                    reader, block, parent, params=self.params, registry=self.registry, preverified=checked
                )
        except LedgerError as exc:
            log.info("invalid block %s at height %d: %s", block.hash.hex()[:16], height, exc)
            return False
        # The block executed, so apply_block verified every signature it was not told was checked: remember them.
        checked.checks += len(unchecked)
        for tx_hash in unchecked:
            checked.remember(tx_hash)
        self._remember(block, result)
        return True

    # ---- after a decision -------------------------------------------------------------------------------

    def executed(self, value: bytes) -> tuple[Block, BlockResult]:
        """The block and execution result of a decided value (re-executed only if it fell out of the cache)."""
        block = self._decode(value)
        cached = self._results.get(block.hash)
        if cached is not None:
            return cached
        if not self.validate(block.height, value):
            raise LedgerError(f"decided block {block.hash.hex()[:16]} does not execute on our state")
        return self._results[block.hash]


def _fingerprint(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()
