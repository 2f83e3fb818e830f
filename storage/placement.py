"""Replica placement: an object with replication factor r lives on the r live peers closest to its CID.

Placement uses the same XOR metric as the DHT (distance from sha256 of the peer ID to sha256 of the CID's
multihash), so any node can compute an object's home peers from the peer list alone, and the homes are the
peers a GET_PROVIDERS lookup reaches first. The planner is pure: given who holds the object and who is alive,
it says which peers must take a copy now and which holders are surplus.

To avoid shuffling data on every join, a live holder keeps its copy even if a newcomer is now closer; copies
are added only when fewer than r live holders remain (a holder left), and the newcomers chosen are the closest
live peers that do not hold it yet.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass

from storage.address import CID
from storage.dht.keyspace import Contact, key_of, provider_key

# Copies an object gets unless its add says otherwise (`POST /objects`, `ehrnet add`, `POST /pins`, EHR filing):
# two, so that the crash of any one holder leaves the object readable. An add with r >= 2 is acknowledged only
# once min(r, storage nodes reachable) nodes hold it (node/store/replication.py `await_holders`), so the
# guarantee holds from the acknowledgement on, not from whenever background placement got round to it.
DEFAULT_REPLICATION = 2


def closest_peers(cid: CID, peers: Iterable[Contact], count: int) -> list[Contact]:
    """The `count` peers nearest to `cid` in the DHT keyspace, nearest first."""
    target = key_of(provider_key(cid))
    return heapq.nsmallest(count, peers, key=lambda peer: peer.key ^ target)


@dataclass(frozen=True, slots=True)
class ReplicationPlan:
    must_take: tuple[Contact, ...]  # live peers that should fetch and pin a copy now
    surplus: tuple[Contact, ...]  # live holders beyond r, farthest first; they may unpin
    live_holders: int

    @property
    def healthy(self) -> bool:
        return not self.must_take


def plan_replication(
    cid: CID, replication: int, holders: Iterable[bytes], live_peers: Iterable[Contact]
) -> ReplicationPlan:
    """Which live peers must take a replica so `cid` has `replication` live copies (fewer if peers are few)."""
    if replication < 1:
        raise ValueError("replication factor must be at least 1")
    held = set(holders)
    target = key_of(provider_key(cid))
    live = sorted({p.peer_id: p for p in live_peers}.values(), key=lambda peer: peer.key ^ target)
    live_holders = [peer for peer in live if peer.peer_id in held]
    shortfall = max(0, replication - len(live_holders))
    must_take = [peer for peer in live if peer.peer_id not in held][:shortfall]
    surplus = list(reversed(live_holders[replication:]))
    return ReplicationPlan(tuple(must_take), tuple(surplus), len(live_holders))
