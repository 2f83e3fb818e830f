"""Block sync's I/O around the trigger (node/ledger/sync/block_sync.py), with a fake host and a fake import.

What must hold: a message from a peer ahead starts a sync from that peer alone, with no status round to anyone;
the next batch is requested while the one before imports (a wiped node waits one round trip, not one per batch);
the sync follows a chain that moves on meanwhile, to the peer's head; a node not behind asks nobody anything; and
the repair loop's fallback asks one peer's status, only after a long stall. The real-cluster runs are
tests/node/test_ledger_crash_restart.py and tests/node/test_ledger_catch_up_cluster.py.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from consensus.gossip_batch import ConsensusBatch
from consensus.votes import Vote, VoteKind
from node.ledger import wire
from node.ledger.sync.block_sync import BlockSync, Entries
from node.ledger.sync.trigger import SyncTrigger
from primitives.keys import SigningKey

KEY = SigningKey.generate()


class ChainHost:
    """Peers that hold final blocks up to their `heads`; logs every request as (peer, type, start)."""

    def __init__(self, heads: dict[str, int]) -> None:
        self.heads = heads
        self.log: list[tuple[str, str, int]] = []
        self.in_flight = 0
        self.max_in_flight = 0

    def connected_peers(self) -> list[str]:
        return sorted(self.heads)

    async def request(self, peer: str, protocol: str, payload: bytes, **kwargs: Any) -> bytes:
        req = wire.decode_request(payload)
        self.log.append((peer, req.type, req.start))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.01)  # a round trip
            if req.type == "status":
                return wire.PeerStatus("c", b"g" * 32, self.heads[peer]).encode()
            assert req.type == "blocks"
            top = min(req.end, self.heads[peer])
            entries: Entries = [(b"block-%d" % h, h) for h in range(req.start, top + 1)]
            return wire.encode_blocks(entries)
        finally:
            self.in_flight -= 1


class Chain:
    """Our chain: imports in order, each block costing a little time (verification and execution)."""

    def __init__(self, height: int) -> None:
        self.height = height
        self.imported: list[bytes] = []

    async def import_entries(self, entries: Entries) -> bool:
        for block, value in entries:
            await asyncio.sleep(0.001)
            if value != self.height + 1:
                return False
            self.height += 1
            self.imported.append(block)
        return True


def syncer(host: ChainHost, chain: Chain, trigger: SyncTrigger | None = None) -> BlockSync:
    return BlockSync(cast(Any, host), lambda: chain.height, host.connected_peers, chain.import_entries, trigger=trigger)


def vote_at(height: int) -> ConsensusBatch:
    vote = Vote(VoteKind.PREVOTE, "c", height, 0, None, KEY.public_key).signed(KEY)
    return ConsensusBatch(votes=(vote,))


async def settle(sync: BlockSync) -> None:
    for _ in range(1000):
        if not sync.running:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("sync did not end")


def test_a_vote_from_a_peer_ahead_starts_a_pipelined_sync_from_that_peer_alone() -> None:
    async def scenario() -> None:
        host = ChainHost({"a": 300, "b": 300, "c": 300, "d": 300})
        chain = Chain(10)
        sync = syncer(host, chain)
        sync.showed_batch("c", vote_at(11))  # the next height's work: nothing we lack
        assert not sync.running and host.log == []
        sync.showed_batch("c", vote_at(301))  # c has finalised 300
        await settle(sync)
        assert chain.height == 300
        assert {peer for peer, _, _ in host.log} == {"c"}, "only the peer that showed it is ahead is asked"
        assert all(kind == "blocks" for _, kind, _ in host.log), "no status round first"
        starts = [start for _, _, start in host.log]
        assert starts == [11, 75, 139, 203, 267, 301], "64 blocks per request, until an empty answer"
        assert host.max_in_flight == 1
        assert sync.syncs == 1

    asyncio.run(scenario())


def test_the_next_batch_is_on_its_way_while_the_one_before_imports() -> None:
    async def scenario() -> None:
        host = ChainHost({"a": 200})
        chain = Chain(0)
        in_flight_during_import: list[int] = []
        plain_import = chain.import_entries

        async def watching_import(entries: Entries) -> bool:
            await asyncio.sleep(0.02)  # slower than a round trip, as execution is on a real node
            in_flight_during_import.append(host.in_flight)
            return await plain_import(entries)

        sync = BlockSync(cast(Any, host), lambda: chain.height, host.connected_peers, watching_import)
        sync.showed_final("a", 200)
        await settle(sync)
        assert chain.height == 200
        assert len(in_flight_during_import) == 4
        # While each batch imported, the next request had been sent (and had had time to come back: 0 in flight).
        assert [start for _, _, start in host.log] == [1, 65, 129, 193, 201]
        assert in_flight_during_import[0] in (0, 1)

    asyncio.run(scenario())


def test_a_chain_that_moves_on_during_the_sync_is_followed_to_the_head() -> None:
    async def scenario() -> None:
        host = ChainHost({"a": 100})
        chain = Chain(0)
        sync = syncer(host, chain)
        sync.showed_final("a", 100)
        await asyncio.sleep(0.015)
        host.heads["a"] = 180  # a made more blocks after it showed 100
        await settle(sync)
        assert chain.height == 180

    asyncio.run(scenario())


def test_a_node_that_is_not_behind_asks_nobody_and_the_fallback_asks_one_peer_after_a_long_stall() -> None:
    async def scenario() -> None:
        host = ChainHost({f"p{i}": 50 for i in range(15)})
        chain = Chain(50)
        sync = syncer(host, chain, SyncTrigger(fallback_after_s=3.0, fallback_every_s=1.0))
        for _ in range(10):  # five seconds of repair-loop ticks with rounds slower than 0.5 s but under 3 s
            sync.tick(stalled_s=2.0)
            await asyncio.sleep(0)
        assert host.log == []
        host.heads["p7"] = 60
        sync.tick(stalled_s=3.5)
        await asyncio.sleep(0.05)
        sync.tick(stalled_s=3.6)  # within the fallback's second: nobody else
        await asyncio.sleep(0.05)
        statuses = [peer for peer, kind, _ in host.log if kind == "status"]
        assert len(statuses) == 1
        if statuses == ["p7"]:
            await settle(sync)
            assert chain.height == 60

    asyncio.run(scenario())
