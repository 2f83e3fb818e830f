"""The k-bucket routing table (Kademlia §2.2, libp2p kad-dht "Routing table").

Bucket i holds up to k peers whose key shares exactly i leading bits with ours, least recently seen first.
When a bucket is full, Kademlia pings its least recently seen peer and keeps it if it answers (old peers that
stayed up tend to stay up). The table does no IO: `observe` returns the peer the caller should ping and parks
the newcomer in a small replacement cache; the caller reports the outcome with `ping_answered` or
`peer_failed`, and a failed peer is replaced by the freshest parked newcomer.
"""

from __future__ import annotations

import heapq
import random
from collections import OrderedDict
from collections.abc import Iterable

from storage.dht.keyspace import KEY_BITS, Contact, common_prefix_length

K = 20


class RoutingTable:
    def __init__(self, local: Contact, k: int = K) -> None:
        self.local = local
        self.k = k
        # cpl -> peer_id -> (contact, last seen); OrderedDict order is least recently seen first.
        self._buckets: dict[int, OrderedDict[bytes, tuple[Contact, float]]] = {}
        self._replacements: dict[int, OrderedDict[bytes, Contact]] = {}
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def __contains__(self, peer_id: object) -> bool:
        if not isinstance(peer_id, bytes):
            return False
        bucket = self._buckets.get(self._index_of_id(peer_id))
        return bucket is not None and peer_id in bucket

    def _index_of_id(self, peer_id: bytes) -> int:
        return common_prefix_length(self.local.key, Contact(peer_id).key)

    def observe(self, contact: Contact, now: float) -> Contact | None:
        """Note that `contact` was heard from; returns a peer to ping if its bucket is full, else None."""
        index = common_prefix_length(self.local.key, contact.key)
        if index == KEY_BITS:
            return None  # ourselves
        bucket = self._buckets.setdefault(index, OrderedDict())
        if contact.peer_id in bucket:
            bucket[contact.peer_id] = (contact, now)
            bucket.move_to_end(contact.peer_id)
            return None
        if len(bucket) < self.k:
            bucket[contact.peer_id] = (contact, now)
            self._size += 1
            return None
        parked = self._replacements.setdefault(index, OrderedDict())
        parked[contact.peer_id] = contact
        parked.move_to_end(contact.peer_id)
        while len(parked) > self.k:
            parked.popitem(last=False)
        oldest, _ = next(iter(bucket.values()))
        return oldest

    def ping_answered(self, peer_id: bytes, now: float) -> None:
        """The least recently seen peer answered: it stays, as the most recently seen."""
        bucket = self._buckets.get(self._index_of_id(peer_id))
        if bucket is not None and peer_id in bucket:
            contact, _ = bucket[peer_id]
            bucket[peer_id] = (contact, now)
            bucket.move_to_end(peer_id)

    def peer_failed(self, peer_id: bytes, now: float) -> Contact | None:
        """Drop a peer that did not answer; returns the parked newcomer that took its place, if any."""
        index = self._index_of_id(peer_id)
        bucket = self._buckets.get(index)
        if bucket is None or peer_id not in bucket:
            return None
        del bucket[peer_id]
        self._size -= 1
        parked = self._replacements.get(index)
        if not parked:
            return None
        _, newcomer = parked.popitem(last=True)
        bucket[newcomer.peer_id] = (newcomer, now)
        self._size += 1
        return newcomer

    def closest(self, key: int, count: int, exclude: Iterable[bytes] = ()) -> list[Contact]:
        """The `count` known peers nearest to `key` by XOR distance, nearest first."""
        skip = set(exclude)
        candidates = (
            contact
            for bucket in self._buckets.values()
            for contact, _ in bucket.values()
            if contact.peer_id not in skip
        )
        return heapq.nsmallest(count, candidates, key=lambda contact: contact.key ^ key)

    def contacts(self) -> list[Contact]:
        return [contact for bucket in self._buckets.values() for contact, _ in bucket.values()]

    def stale_buckets(self, now: float, interval: float) -> list[int]:
        """Non-empty buckets with no peer heard from within `interval`: refresh them with a lookup."""
        return [
            index
            for index, bucket in sorted(self._buckets.items())
            if bucket and max(seen for _, seen in bucket.values()) < now - interval
        ]

    def random_key_in_bucket(self, index: int, rng: random.Random) -> int:
        """A key sharing exactly `index` leading bits with ours: the target of that bucket's refresh lookup."""
        if not 0 <= index < KEY_BITS:
            raise ValueError(f"bucket index {index} out of range")
        flip = 1 << (KEY_BITS - 1 - index)
        low = rng.getrandbits(KEY_BITS - 1 - index) if index < KEY_BITS - 1 else 0
        high = (self.local.key >> (KEY_BITS - index)) << (KEY_BITS - index) if index else 0
        return high | ((self.local.key & flip) ^ flip) | low
