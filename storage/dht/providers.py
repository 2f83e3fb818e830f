"""Provider records: who says they hold a CID, until when, and when we must say it again.

Timings follow the IPFS Amino DHT (go-libp2p-kad-dht): a record is valid for 48 h and providers republish
every 22 h, so a record never lapses while its provider is up. Records are keyed by the CID's multihash and
de-duplicated by provider peer ID (a re-announcement refreshes the expiry and the addresses). Per-key and
total caps bound the memory a spamming peer can take.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from dataclasses import dataclass

from storage.dht.keyspace import Contact

PROVIDER_TTL = 48 * 3600.0
REPUBLISH_INTERVAL = 22 * 3600.0
MAX_PROVIDERS_PER_KEY = 64
MAX_KEYS = 1_000_000


@dataclass(frozen=True, slots=True)
class ProviderRecord:
    provider: Contact
    expires: float


class ProviderStore:
    def __init__(
        self, ttl: float = PROVIDER_TTL, max_per_key: int = MAX_PROVIDERS_PER_KEY, max_keys: int = MAX_KEYS
    ) -> None:
        self.ttl = ttl
        self.max_per_key = max_per_key
        self.max_keys = max_keys
        self._records: dict[bytes, OrderedDict[bytes, ProviderRecord]] = {}

    def add(self, key: bytes, provider: Contact, now: float) -> bool:
        """Record (or refresh) `provider` for `key`; False if the store is at its key cap."""
        records = self._records.get(key)
        if records is None:
            if len(self._records) >= self.max_keys:
                return False
            records = self._records[key] = OrderedDict()
        records.pop(provider.peer_id, None)
        records[provider.peer_id] = ProviderRecord(provider, now + self.ttl)
        while len(records) > self.max_per_key:
            records.popitem(last=False)  # the least recently refreshed goes first
        return True

    def get(self, key: bytes, now: float, limit: int = 20) -> list[Contact]:
        """Live providers of `key`, most recently announced first, each peer once."""
        records = self._records.get(key)
        if not records:
            return []
        live = [record.provider for record in reversed(records.values()) if record.expires > now]
        return live[:limit]

    def expire(self, now: float) -> int:
        """Drop expired records; returns how many went."""
        dropped = 0
        for key in list(self._records):
            records = self._records[key]
            for peer_id in [p for p, r in records.items() if r.expires <= now]:
                del records[peer_id]
                dropped += 1
            if not records:
                del self._records[key]
        return dropped

    def __len__(self) -> int:
        return sum(len(records) for records in self._records.values())


class RepublishSchedule:
    """Keys this node provides and when each must next be announced (immediately when first added)."""

    def __init__(self, interval: float = REPUBLISH_INTERVAL) -> None:
        self.interval = interval
        self._due: dict[bytes, float] = {}
        self._heap: list[tuple[float, bytes]] = []

    def provide(self, key: bytes, now: float) -> None:
        self._schedule(key, now)

    def stop(self, key: bytes) -> None:
        self._due.pop(key, None)

    def _schedule(self, key: bytes, when: float) -> None:
        self._due[key] = when
        heapq.heappush(self._heap, (when, key))

    def due(self, now: float) -> list[bytes]:
        """Keys to announce now; each is rescheduled one interval later."""
        ready: list[bytes] = []
        while self._heap and self._heap[0][0] <= now:
            when, key = heapq.heappop(self._heap)
            if self._due.get(key) != when:
                continue  # stale heap entry from a stop or reschedule
            ready.append(key)
            self._schedule(key, now + self.interval)
        return ready

    def next_due(self) -> float | None:
        live = [when for when, key in self._heap if self._due.get(key) == when]
        return min(live) if live else None

    def keys(self) -> list[bytes]:
        return sorted(self._due)
