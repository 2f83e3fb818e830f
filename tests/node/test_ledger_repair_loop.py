"""The repair loop's cost while rounds are slow (node/ledger/repair.py with node/ledger/sync/block_sync.py).

With 16 validators on a 2-core machine a round often takes longer than the loop's 0.5 s interval. The loop used
to start block sync whenever a round had taken that long, and block sync began by asking every peer for its
status: every node asked every other node twice a second (O(N²) streams), the load slowed the rounds further,
and an idle 16-validator cluster made about five blocks a minute. Now a node that is not behind asks nobody while
a round is merely slow; after a long stall it asks one peer at a time. The loop runs here on a fake host with its
interval scaled down (the real cluster runs are tests/node/test_ledger_catch_up_cluster.py and bench/idle.py).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Coroutine
from typing import Any, cast

from consensus.gossip_batch import ConsensusBatch
from node.ledger import wire
from node.ledger.repair import LedgerRepair
from node.ledger.sync.block_sync import BlockSync, Entries
from node.ledger.sync.trigger import SyncTrigger

PEERS = [f"peer-{i:02d}" for i in range(15)]  # a 16-validator network seen from one node
GENESIS_HASH = b"g" * 32
HEIGHT = 40


class CountingHost:
    """Fifteen peers, all at our height; counts the requests each receives, by type."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str]] = Counter()

    def connected_peers(self) -> list[str]:
        return list(PEERS)

    async def request(self, peer: str, protocol: str, payload: bytes, **kwargs: Any) -> bytes:
        kind = wire.decode_request(payload).type
        self.requests[(peer, kind)] += 1
        await asyncio.sleep(0)
        if kind == "status":
            return wire.PeerStatus("chain", GENESIS_HASH, HEIGHT).encode()
        if kind == "blocks":
            return wire.encode_blocks([])
        return ConsensusBatch().encode()

    def of_kind(self, kind: str) -> Counter[str]:
        return Counter({peer: n for (peer, k), n in self.requests.items() if k == kind})


class FakeGenesis:
    def hash(self) -> bytes:
        return GENESIS_HASH


class FakeStore:
    height = HEIGHT


class Repair(LedgerRepair):
    repair_interval_s = 0.01  # 50x faster than on a node
    pull_after_s = 1e9  # the round-state pull (one peer) is not what is counted here

    def __init__(self, host: CountingHost, stalled_s: float, trigger: SyncTrigger) -> None:
        self.host = cast(Any, host)
        self.chain_id = "chain"
        self.genesis = cast(Any, FakeGenesis())
        self.store = cast(Any, FakeStore())
        self._idle = None
        self._stalled_s = stalled_s
        self._last_progress = time.monotonic() - stalled_s
        self._last_regossip = time.monotonic()
        self._last_pull = time.monotonic()
        self._verified_peers = set(PEERS)  # handshakes done: every peer is on our chain, at our height
        self._rejected_peers = set()
        self._syncing = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.block_sync = BlockSync(self.host, lambda: HEIGHT, self.host.connected_peers, self._no_import, trigger)

    async def _no_import(self, entries: Entries) -> bool:
        raise AssertionError("no block is missing")

    def _spawn(self, work: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _regossip(self) -> None:
        pass

    def _feed(self, batch: ConsensusBatch) -> None:
        pass


def run_loop(repair: Repair, seconds: float) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop().create_task(repair._repair_loop())
        await asyncio.sleep(seconds)
        loop.cancel()
        await asyncio.gather(loop, *repair._tasks, return_exceptions=True)

    asyncio.run(scenario())


def test_a_slow_round_makes_a_node_that_is_not_behind_ask_nobody() -> None:
    host = CountingHost()
    # A round that has taken 2 s so far (four of a node's 0.5 s intervals), over 30 loop intervals.
    repair = Repair(host, stalled_s=2.0, trigger=SyncTrigger(fallback_after_s=3.0))
    run_loop(repair, 0.3)
    assert sum(host.of_kind("status").values()) == 0, f"status requests while merely slow: {host.requests}"
    assert sum(host.of_kind("blocks").values()) == 0


def test_a_long_stall_asks_one_peer_at_a_time_not_every_peer() -> None:
    host = CountingHost()
    trigger = SyncTrigger(fallback_after_s=3.0, fallback_every_s=0.05)  # one status per 0.05 s (1 s on a node)
    repair = Repair(host, stalled_s=10.0, trigger=trigger)
    run_loop(repair, 0.3)
    statuses = host.of_kind("status")
    # About 0.3 / 0.05 = 6 asked in all, each a different peer; the timer this replaces asked all 15 every interval.
    assert 1 <= sum(statuses.values()) <= 8, statuses
    assert max(statuses.values()) == 1, statuses
