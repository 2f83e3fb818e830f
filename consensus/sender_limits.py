"""Per-sender admission limits for the mempool: how many transactions one key may have pending, and how fast it
may send.

A permissioned ledger charges no fees, so nothing else stops one key (an allowlisted one gone rogue, or any key
on an "open" chain) from filling the pool and every block with its transactions. Two bounds, in both account
modes, each refused with `TxRateLimitError` (HTTP 429, "retry later"):

- at most `max_pending` of a sender's transactions wait in the pool at once (ready and queued together);
- a token bucket per sender (the classic rate limiter: `burst` tokens, refilled at `rate_per_s`; a transaction
  takes one) bounds its sustained rate while letting a client send a batch at once.

The defaults leave room for every workload the project runs: the ledger benchmark's senders send ~12 tx/s each at
3,000 tx/s over 256 keys, the contract benchmark posts up to 250 calls per sender in one batch, the chaos
workload signs each transaction with a fresh key. Buckets of senders idle long enough to be full again are
forgotten, so the table stays as small as the set of recently active senders. The clock is injected (monotonic
seconds), so the limits are tested on a fake one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from consensus.errors import TxRateLimitError

Clock = Callable[[], float]


@dataclass(frozen=True)
class SenderLimitConfig:
    max_pending: int = 256
    rate_per_s: float = 100.0
    burst: int = 256

    def __post_init__(self) -> None:
        if self.max_pending < 1 or self.rate_per_s <= 0 or self.burst < 1:
            raise ValueError("sender limits must be positive")


@dataclass
class _Bucket:
    tokens: float
    at: float


class SenderLimits:
    """The mempool's per-sender bounds. `admit` checks and takes a token; it never blocks."""

    def __init__(self, config: SenderLimitConfig | None = None, clock: Clock = time.monotonic) -> None:
        self.config = config or SenderLimitConfig()
        self._clock = clock
        self._buckets: dict[bytes, _Bucket] = {}
        self._last_sweep = clock()
        self.refused = 0

    def admit(self, sender: bytes, pending: int) -> None:
        """Raise TxRateLimitError if `sender` (with `pending` transactions already in the pool) may not add one."""
        config = self.config
        if pending >= config.max_pending:
            self.refused += 1
            raise TxRateLimitError(
                f"sender {sender.hex()[:16]}… already has {pending} pending transactions (at most "
                f"{config.max_pending} per sender); retry once some are final"
            )
        now = self._clock()
        self._sweep(now)
        bucket = self._buckets.get(sender)
        if bucket is None:
            bucket = self._buckets[sender] = _Bucket(float(config.burst), now)
        bucket.tokens = min(float(config.burst), bucket.tokens + (now - bucket.at) * config.rate_per_s)
        bucket.at = now
        if bucket.tokens < 1.0:
            self.refused += 1
            wait = (1.0 - bucket.tokens) / config.rate_per_s
            raise TxRateLimitError(
                f"sender {sender.hex()[:16]}… sends faster than {config.rate_per_s:g} transactions/s (bursts of "
                f"{config.burst}); retry in {wait:.2f} s"
            )
        bucket.tokens -= 1.0

    def _sweep(self, now: float) -> None:
        """Forget buckets that have refilled completely: a new bucket starts full, so nothing changes for them."""
        refill_s = self.config.burst / self.config.rate_per_s
        if now - self._last_sweep < refill_s:
            return
        self._last_sweep = now
        self._buckets = {k: b for k, b in self._buckets.items() if now - b.at < refill_s}

    def __len__(self) -> int:
        return len(self._buckets)
