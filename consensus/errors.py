"""The ledger's exception tree.

Everything the ledger raises for bad input derives from `LedgerError`, so the node can translate it at one
boundary: a `TxError` becomes an HTTP 4xx whose JSON names the problem (`code`), a `BlockError` from a peer is
logged and scored, a `StoreError` stops the node from accepting work.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error the ledger raises on purpose."""


class TxError(LedgerError):
    """A transaction was rejected. `code` is a stable machine-readable name; `http_status` the status to answer."""

    code = "invalid_tx"
    http_status = 400


class TxEncodingError(TxError):
    code = "bad_encoding"


class TxSizeError(TxError):
    code = "too_large"
    http_status = 413


class TxChainIdError(TxError):
    code = "wrong_chain_id"


class TxSignatureError(TxError):
    code = "bad_signature"


class TxNonceError(TxError):
    code = "bad_nonce"
    http_status = 409


class TxKindError(TxError):
    code = "unknown_kind"


class MempoolFullError(TxError):
    """The pool is at its bound; the client should retry later."""

    code = "mempool_full"
    http_status = 503


class TxNotAllowlistedError(TxError):
    """Under `accounts = "allowlist"` the sender is not an allowlisted account (consensus/accounts.py)."""

    code = "not_allowlisted"
    http_status = 403


class TxRateLimitError(TxError):
    """The sender has too many pending transactions or sends faster than the per-sender rate: retry later."""

    code = "rate_limited"
    http_status = 429


class BlockError(LedgerError):
    """A block, header or commit fails validation (typically a peer's bad message)."""


class CommitError(BlockError):
    """A commit does not carry a quorum of valid precommits from the expected validator set."""


class ProofError(LedgerError):
    """A state proof is malformed."""


class GenesisError(LedgerError):
    """A genesis document is malformed."""


class StoreError(LedgerError):
    """The chain store cannot complete an operation."""


class DiskFullError(StoreError):
    """The disk (or file size limit) is exhausted; nothing was written and the store is intact."""


class StoreMismatchError(StoreError):
    """The data directory belongs to another chain or genesis, or a block does not extend the stored head."""


class LightClientError(LedgerError):
    """A header cannot be verified from the light client's trusted state."""


class TxFailed(LedgerError):
    """Raised by a transaction handler when the rules refuse the transaction once it is in a block.

    The transaction stays in the block, its nonce is consumed, its state writes are reverted and its receipt
    says why (the Ethereum model: a failed call still costs its sender).
    """

    def __init__(self, message: str, cost: int = 0) -> None:
        super().__init__(message)
        self.cost = cost
