"""What a node already knows about transaction bytes, so that it checks each signature once and decodes once.

A transaction reaches a validator's pool from a client or from a peer, and then comes back inside a proposal (to
validate and execute) and sometimes inside a synced block. Its Ed25519 check is the largest single cost of a
transaction (docs/LEDGER.md §10), and it only ever needs doing once per node: `CheckedTxs` remembers the hashes of
transactions whose signature verified, and `Mempool.add_raw` and block validation (`preverified=`) skip those.

Safety: the key is the transaction hash, sha256 of the whole signed encoding (consensus/tx.py), so a hash in the
set stands for exactly the bytes that were checked; no different bytes (another signature, another body) can
match it. Only a verification that succeeded is remembered, and the set is bounded (oldest forgotten first): a
forgotten hash costs one more check, never a skipped one.

`DecodedTxs` holds transactions the gossip validator decoded (without their signature) for the pool to take
instead of decoding the same bytes again; the pool takes one only when its bytes equal what it was given.
"""

from __future__ import annotations

from collections import OrderedDict

from consensus.tx import Tx

CHECKED_CAPACITY = 50_000  # ≈ 5 MB of hashes; more than a full pool (20,000) and a few blocks
DECODED_CAPACITY = 4_096  # a few gossip batches waiting between the validator and the pool


class CheckedTxs:
    """Hashes of transactions whose signature verified here (bounded, oldest first out)."""

    def __init__(self, capacity: int = CHECKED_CAPACITY) -> None:
        self.capacity = capacity
        self._hashes: OrderedDict[bytes, None] = OrderedDict()
        self.checks = 0  # signatures actually verified (cache misses): what a node's CPU per transaction pays

    def __contains__(self, tx_hash: object) -> bool:
        return tx_hash in self._hashes

    def __len__(self) -> int:
        return len(self._hashes)

    def remember(self, tx_hash: bytes) -> None:
        """Record a transaction whose signature verified (by `verify`, or by a caller that checked it)."""
        self._hashes[tx_hash] = None
        if len(self._hashes) > self.capacity:
            self._hashes.popitem(last=False)

    def verify(self, tx: Tx) -> bool:
        """True when `tx`'s signature is valid: checked once, then answered from memory."""
        if tx.hash in self._hashes:
            return True
        self.checks += 1
        if not tx.verify_signature():
            return False
        self.remember(tx.hash)
        return True


class DecodedTxs:
    """Transactions decoded from gossip before the pool sees them, by hash (bounded, oldest first out)."""

    def __init__(self, capacity: int = DECODED_CAPACITY) -> None:
        self.capacity = capacity
        self._txs: OrderedDict[bytes, Tx] = OrderedDict()

    def put(self, tx: Tx) -> None:
        self._txs[tx.hash] = tx
        if len(self._txs) > self.capacity:
            self._txs.popitem(last=False)

    def take(self, tx_hash: bytes, raw: bytes) -> Tx | None:
        tx = self._txs.pop(tx_hash, None)
        return tx if tx is not None and tx.raw == raw else None
