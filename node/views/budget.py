"""Per-source gas budgets for read-only contract calls (views), a token bucket each.

Views cost the node CPU in its view workers (node/views/worker.py) and are anonymous, so each source — a remote
address, or the operator's token — gets a bucket of gas that refills at a fixed rate. A view reserves its whole
gas limit before it runs and gets back what it did not use, so one source can neither run more than its bucket
at once nor more than the refill rate over time; an empty bucket is a 429 telling the caller when to retry.
Pure logic: the clock is injected.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_SOURCES = 10_000  # buckets kept; the least recently used is forgotten (it would have refilled anyway)


@dataclass
class _Bucket:
    level: float
    at: float


class GasBudget:
    def __init__(self, capacity: int, refill_per_s: float, clock: Callable[[], float]) -> None:
        if capacity < 1 or refill_per_s <= 0:
            raise ValueError("a gas budget needs a positive capacity and refill rate")
        self.capacity = capacity
        self.refill_per_s = refill_per_s
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def _bucket(self, source: str) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.get(source)
        if bucket is None:
            bucket = self._buckets[source] = _Bucket(float(self.capacity), now)
            if len(self._buckets) > MAX_SOURCES:
                self._buckets.popitem(last=False)
        else:
            bucket.level = min(float(self.capacity), bucket.level + (now - bucket.at) * self.refill_per_s)
            bucket.at = now
            self._buckets.move_to_end(source)
        return bucket

    def reserve(self, source: str, gas: int) -> float | None:
        """Take `gas` from `source`'s bucket: None when taken, else the seconds until it could be."""
        bucket = self._bucket(source)
        if gas <= bucket.level:
            bucket.level -= gas
            return None
        return (min(gas, self.capacity) - bucket.level) / self.refill_per_s

    def refund(self, source: str, gas: int) -> None:
        """Give back the part of a reservation the view did not use."""
        bucket = self._bucket(source)
        bucket.level = min(float(self.capacity), bucket.level + max(gas, 0))

    def available(self, source: str) -> int:
        return int(self._bucket(source).level)
