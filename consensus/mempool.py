"""The transaction pool: admission checks, per-sender nonce order, de-duplication and a hard bound.

A sender's transactions are *ready* when their nonces run contiguously from the sender's next nonce in the
committed state; later ones wait as *queued* until the gap fills. Only ready transactions are reaped for a
block, in arrival order across senders and nonce order within a sender, so a proposal built from the pool
always executes without nonce errors. After a block commits, `update` drops what the block included and
re-checks the senders it touched against the new state (their nonces moved).

Admission also applies the chain's account rule (`sender_check`: under `accounts = "allowlist"` a sender the last
final state does not allow is refused, 403 — the same rule blocks enforce, consensus/accounts.py) and the
per-sender bounds (`limits`: pending count and rate, 429 — consensus/sender_limits.py), on every path into the
pool: a client's submission, gossip, and the journal's reload at start-up (a reloaded pool is within the bounds:
each sender's pending count is at most `max_pending`, no more than a fresh bucket's burst).

The pool itself stays in memory; an optional `journal` observer is told of every admission and every removal, so
a node can mirror the pool on disk (consensus/mempool_journal.py) whichever path changes it — client submission,
gossip, a committed block or a block imported by sync.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from consensus.allowlist_txs import REMOVE as ALLOWLIST_REMOVE
from consensus.checked_txs import CheckedTxs, DecodedTxs
from consensus.errors import MempoolFullError, TxError, TxNonceError, TxSignatureError
from consensus.execute import Registry
from consensus.genesis import Params
from consensus.sender_limits import SenderLimits
from consensus.tx import Tx, decode_tx
from primitives.keys import address_of

NonceSource = Callable[[bytes], int]  # address -> next nonce in the committed state
SenderCheck = Callable[[bytes], None]  # sender public key -> None, or raises TxError (e.g. not allowlisted)


class PoolObserver(Protocol):
    """Told of each change to the pool's contents (e.g. to keep a journal on disk)."""

    def added(self, tx: Tx) -> None: ...

    def removed(self, tx_hash: bytes) -> None: ...


class Admission(enum.Enum):
    READY = "ready"  # can go into the next block
    QUEUED = "queued"  # waits for a lower nonce from the same sender
    KNOWN = "known"  # already in the pool: a retry, answered like a success


@dataclass
class _Sender:
    next_nonce: int  # committed next nonce
    txs: dict[int, Tx]  # nonce -> tx (ready and queued)
    ready_upto: int  # nonces below this (and >= next_nonce) are in the ready queue


class Mempool:
    def __init__(
        self,
        *,
        chain_id: str,
        params: Params,
        registry: Registry,
        nonce_of: NonceSource,
        max_txs: int = 20_000,
        max_bytes: int = 32 * 1024 * 1024,
        max_ahead: int = 256,
        sender_check: SenderCheck | None = None,
        limits: SenderLimits | None = None,
    ) -> None:
        self.chain_id = chain_id
        self.params = params
        self.registry = registry
        self._nonce_of = nonce_of
        self.max_txs = max_txs
        self.max_bytes = max_bytes
        self.max_ahead = max_ahead  # how far past the next nonce a sender may queue
        self._by_hash: dict[bytes, Tx] = {}
        self._senders: dict[bytes, _Sender] = {}
        self._ready: dict[bytes, Tx] = {}  # insertion-ordered: the reap order
        self._bytes = 0
        self.journal: PoolObserver | None = None
        self.sender_check = sender_check
        self.limits = limits
        # Signatures checked here (consensus/checked_txs.py): block validation passes these as `preverified`.
        self.checked = CheckedTxs()
        self.decoded = DecodedTxs()  # decoded by the gossip validator, for `add_raw` to take

    def __len__(self) -> int:
        return len(self._by_hash)

    def __contains__(self, tx_hash: object) -> bool:
        return tx_hash in self._by_hash

    @property
    def size_bytes(self) -> int:
        return self._bytes

    @property
    def ready_count(self) -> int:
        return len(self._ready)

    def get(self, tx_hash: bytes) -> Tx | None:
        return self._by_hash.get(tx_hash)

    def next_nonce(self, address: bytes) -> int:
        """The nonce a new transaction from `address` should carry: past the committed nonce and past every
        pending transaction of the sender (so it never collides with one already waiting)."""
        sender = self._senders.get(address)
        if sender is None:
            return self._nonce_of(address)
        return max(sender.ready_upto, max(sender.txs, default=-1) + 1)

    def add_raw(self, raw: bytes) -> tuple[Tx, Admission]:
        """Decode, check and admit bytes from a client or peer. Raises a TxError naming the problem."""
        tx: Tx | None = None
        if raw and len(raw) <= self.params.max_tx_bytes:
            # Cheap duplicate check before the signature check: a client may retry, a relay may repeat.
            tx_hash = hashlib.sha256(raw).digest()
            known = self._by_hash.get(tx_hash)
            if known is not None:
                return known, Admission.KNOWN
            tx = self.decoded.take(tx_hash, raw)
        if tx is None or tx.chain_id != self.chain_id:
            tx = decode_tx(raw, chain_id=self.chain_id, max_bytes=self.params.max_tx_bytes, check_signature=False)
        if not self.checked.verify(tx):  # the same order of checks as decode_tx: the signature comes last
            raise TxSignatureError("signature does not verify against the sender's public key")
        return tx, self.add(tx)

    def add(self, tx: Tx) -> Admission:
        """Admit a signature-checked transaction."""
        if tx.hash in self._by_hash:
            return Admission.KNOWN
        self.checked.remember(tx.hash)
        self.registry.check(tx, self.params)
        if self.sender_check is not None:
            self.sender_check(tx.sender)
        sender = self._senders.get(tx.address)
        if sender is None:
            next_nonce = self._nonce_of(tx.address)
            sender = _Sender(next_nonce, {}, next_nonce)
        if self.limits is not None and tx.nonce >= sender.next_nonce and tx.nonce not in sender.txs:
            self.limits.admit(tx.sender, len(sender.txs))  # only a transaction that would otherwise be admitted
        if tx.nonce < sender.next_nonce:
            raise TxNonceError(f"nonce {tx.nonce} is already used; the sender's next nonce is {sender.next_nonce}")
        if tx.nonce in sender.txs:
            raise TxNonceError(f"another transaction with nonce {tx.nonce} from this sender is already pending")
        if tx.nonce >= sender.next_nonce + self.max_ahead:
            raise TxNonceError(
                f"nonce {tx.nonce} is too far ahead of the sender's next nonce {sender.next_nonce} "
                f"(at most {self.max_ahead} may wait)"
            )
        if len(self._by_hash) >= self.max_txs or self._bytes + tx.size > self.max_bytes:
            raise MempoolFullError(
                f"mempool is full ({len(self._by_hash)} transactions, {self._bytes} bytes); retry later"
            )
        self._senders[tx.address] = sender
        sender.txs[tx.nonce] = tx
        self._by_hash[tx.hash] = tx
        self._bytes += tx.size
        self._promote(sender)
        if self.journal is not None:
            self.journal.added(tx)
        return Admission.READY if tx.nonce < sender.ready_upto else Admission.QUEUED

    def _promote(self, sender: _Sender) -> None:
        while sender.ready_upto in sender.txs:
            tx = sender.txs[sender.ready_upto]
            self._ready[tx.hash] = tx
            sender.ready_upto += 1

    def reap(self, *, max_bytes: int, max_count: int) -> list[Tx]:
        """Ready transactions for a proposal, oldest first, within the limits. The pool is not changed."""
        picked: list[Tx] = []
        total = 0
        for tx in self._ready.values():
            if len(picked) >= max_count or total + tx.size > max_bytes:
                break  # stopping (not skipping) keeps every sender's nonces contiguous
            picked.append(tx)
            total += tx.size
        return picked

    def update(self, committed: Iterable[Tx]) -> None:
        """After a block is final: drop its transactions and re-check the senders it touched."""
        touched: set[bytes] = set()
        disallowed: list[bytes] = []
        for tx in committed:
            touched.add(tx.address)
            self._drop(tx.hash)
            key = tx.body.get("key") if tx.kind == ALLOWLIST_REMOVE else None
            if isinstance(key, bytes):
                disallowed.append(key)
        for key in disallowed:
            self._drop_if_refused(key)
        for address in touched:
            sender = self._senders.get(address)
            if sender is None:
                continue
            sender.next_nonce = self._nonce_of(address)
            for nonce in [n for n in sender.txs if n < sender.next_nonce]:
                self._drop(sender.txs[nonce].hash)  # replaced by another tx with that nonce: can never run
            if not sender.txs:
                del self._senders[address]
                continue
            # Rebuild this sender's readiness from its new next nonce (ready order within the sender is kept).
            for tx in sender.txs.values():
                self._ready.pop(tx.hash, None)
            sender.ready_upto = sender.next_nonce
            self._promote(sender)

    def _drop_if_refused(self, key: bytes) -> None:
        """An account taken off the allowlist: its pending transactions can never be in a valid block, so they go
        (otherwise they would stay ready, and every proposal would reap and skip them)."""
        if self.sender_check is None:
            return
        try:
            self.sender_check(key)
        except TxError:
            sender = self._senders.pop(address_of(key), None)
            for tx in list(sender.txs.values()) if sender is not None else []:
                self._drop(tx.hash)

    def _drop(self, tx_hash: bytes) -> None:
        tx = self._by_hash.pop(tx_hash, None)
        if tx is None:
            return
        self._bytes -= tx.size
        self._ready.pop(tx_hash, None)
        if self.journal is not None:
            self.journal.removed(tx_hash)
        sender = self._senders.get(tx.address)
        if sender is not None:
            sender.txs.pop(tx.nonce, None)
