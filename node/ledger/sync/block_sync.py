"""Block sync: fetching and importing final blocks from a peer that has shown it is ahead (docs/PROTOCOL.md §10).

When to sync and from whom is decided by the pure `SyncTrigger` (node/ledger/sync/trigger.py) from what peers
show of their height: the status in the handshake, and the height of every proposal or vote they originate. This
module does the I/O around it: one sync at a time, the fallback's single status request, and the transfer.

The transfer is pipelined: the next batch of up to 64 blocks (`wire.MAX_SYNC_BLOCKS`) is requested while the
batch before it is verified and executed, so a node far behind (wiped, or restarted after a long stop) waits for
one round trip at the start rather than one per batch. It asks for blocks until the peer has none to give (an
empty answer), not up to a height read beforehand: a chain that moves on while we import is followed to its head.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection

from consensus.gossip_batch import ConsensusBatch
from node.ledger import wire
from node.ledger.sync.trigger import SyncTrigger
from node.p2p.bridge import P2PError, P2PHost
from primitives import codec

log = logging.getLogger("node.ledger.service")

Entries = list[tuple[bytes, codec.Value]]


class BlockSync:
    """Syncs from peers that show they are ahead. `height`: our last final height; `peers`: the peers we may
    ask (connected, not rejected by the handshake); `import_entries`: verifies, executes and stores a batch in
    order, returning whether it imported anything (node/ledger/repair.py)."""

    request_timeout_s = 10.0

    def __init__(
        self,
        host: P2PHost,
        height: Callable[[], int],
        peers: Callable[[], Collection[str]],
        import_entries: Callable[[Entries], Awaitable[bool]],
        trigger: SyncTrigger | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self.trigger = trigger or SyncTrigger()
        self._height, self._peers, self._import, self._clock = height, peers, import_entries, clock
        self._running: asyncio.Task[None] | None = None
        self._probing: asyncio.Task[None] | None = None
        self._trying: set[asyncio.Task[None]] = set()
        self.syncs = 0  # syncs started (a node that is not behind starts none)

    @property
    def running(self) -> bool:
        return self._running is not None and not self._running.done()

    def showed_final(self, peer: str, height: int) -> None:
        """`peer` holds final blocks up to `height` (its status said so): sync now if that is beyond ours."""
        if self.trigger.saw_final(peer, height) and height > self._height():
            self.want()

    def showed_batch(self, peer: str, batch: ConsensusBatch) -> None:
        """`peer` originated `batch`: its proposals and votes show the height it works on."""
        heights = [item.proposal.height for item in batch.proposals] + [vote.height for vote in batch.votes]
        if heights:
            self.showed_final(peer, max(heights) - 1)

    def want(self) -> None:
        """Start a sync unless one runs or no peer has shown it is ahead."""
        if self.running:
            return
        if self.trigger.source(self._height(), self._peers(), self._clock()) is None:
            return
        self.syncs += 1
        self._running = asyncio.get_running_loop().create_task(self._sync_while_behind(), name="ledger-block-sync")

    def try_peer(self, peer: str) -> None:
        """Ask a newly connected peer for the blocks after ours at once, before its status says whether it is
        ahead: one request instead of two, and the first of several peers to answer with blocks is the one synced
        from. Right after a restart a stream is slow to open — both ends are redialling and one of each pair of
        crossing connections is closed — so waiting for the status first, and then for one chosen peer, cost
        seconds of the catch-up. Called for the first few peers of a run (their first handshake): a few requests per
        start, whatever the size of the network."""
        task = asyncio.get_running_loop().create_task(self._try(peer), name="ledger-sync-try")
        self._trying.add(task)
        task.add_done_callback(self._trying.discard)

    async def _try(self, peer: str) -> None:
        start = self._height() + 1
        entries = await self._fetch(peer, start)
        if not entries or self.running or self._height() + 1 != start:
            return  # not behind this peer, or a sync is already under way
        self.trigger.saw_final(peer, start + len(entries) - 1)
        self.syncs += 1
        self._running = asyncio.get_running_loop().create_task(
            self._sync_while_behind((peer, entries)), name="ledger-block-sync"
        )

    def tick(self, stalled_s: float) -> None:
        """Called by the repair loop: the slow fallback (one peer's status, only after a long stall), and a sync
        from a peer whose backoff has ended."""
        peers = self._peers()
        self.trigger.keep_only(peers)
        now = self._clock()
        probe = self.trigger.probe(stalled_s, peers, now)
        if probe is not None and (self._probing is None or self._probing.done()):
            self._probing = asyncio.get_running_loop().create_task(self._ask_status(probe), name="ledger-sync-probe")
        self.want()

    def close(self) -> None:
        for task in (self._running, self._probing, *self._trying):
            if task is not None:
                task.cancel()

    async def _ask_status(self, peer: str) -> None:
        try:
            raw = await self.host.request(peer, wire.LEDGER_PROTOCOL, wire.status_request(), timeout_s=3)
            status = wire.PeerStatus.decode(raw)
        except (P2PError, wire.WireError) as exc:
            log.debug("status from %s: %s", peer, exc)
            return
        self.showed_final(peer, status.height)

    async def _sync_while_behind(self, first: tuple[str, Entries] | None = None) -> None:
        while True:
            peer = first[0] if first is not None else self.trigger.source(self._height(), self._peers(), self._clock())
            if peer is None:
                return
            started = self._height()
            log.info("block sync from %s (it has shown height %d; ours %d)", peer, self.trigger.shown(peer), started)
            await self._sync_from(peer, first[1] if first is not None else None)
            first = None
            self.trigger.synced(peer, started, self._height(), self._clock())

    async def _sync_from(self, peer: str, first: Entries | None = None) -> None:
        """Import blocks from `peer` until it has no more, each batch requested while the one before imports.
        `first`: the first batch, already fetched."""
        start = self._height() + 1
        pending = asyncio.ensure_future(self._fetch(peer, start) if first is None else _ready(first))
        try:
            while True:
                entries = await pending
                if not entries:
                    return
                start += len(entries)
                pending = asyncio.ensure_future(self._fetch(peer, start))
                if not await self._import(entries):
                    return
                if self._height() + 1 != start:  # consensus finalised a block meanwhile, or the batch stopped early
                    pending.cancel()
                    start = self._height() + 1
                    pending = asyncio.ensure_future(self._fetch(peer, start))
        finally:
            pending.cancel()

    async def _fetch(self, peer: str, start: int) -> Entries:
        try:
            raw = await self.host.request(
                peer,
                wire.LEDGER_PROTOCOL,
                wire.blocks_request(start, start + wire.MAX_SYNC_BLOCKS - 1),
                timeout_s=self.request_timeout_s,
                max_response_bytes=wire.MAX_SYNC_RESPONSE_BYTES,
            )
            return wire.decode_blocks(raw)
        except (P2PError, wire.WireError) as exc:
            log.info("block sync from %s failed: %s", peer, exc)
            return []


async def _ready(entries: Entries) -> Entries:
    return entries
