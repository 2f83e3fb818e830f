"""Repair and catch-up for the ledger service: the request–response side of docs/PROTOCOL.md §10.

Gossip is best-effort, so a node that has not finalised a block for a while asks its peers directly: their
status (which doubles as the chain-ID/genesis handshake), final blocks when it is behind (restart, wipe,
partition), the round state of its height, and block values it holds a proposal or quorum for but not the block.
It also serves those requests. Split from `node/ledger/service.py` as a mixin: it works on the service's own state.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Coroutine

from consensus.block import Block, Commit, decode_block
from consensus.chainstore import ChainStore
from consensus.errors import LedgerError
from consensus.execute import Registry
from consensus.genesis import Genesis
from consensus.gossip_batch import ConsensusBatch, ProposalMessage
from consensus.inputs import ConsensusInput, ReceiveValue
from consensus.machine import ConsensusMachine
from consensus.mempool import Mempool
from consensus.messages import MessageError
from consensus.proposal import Proposal
from consensus.votes import ValidatorSet
from node.ledger import wire
from node.ledger.chain_app import ChainApp
from node.ledger.sync.block_sync import BlockSync
from node.ledger.timing import ValueFetchSchedule
from node.p2p.bridge import P2PError, P2PHost, ProtocolRefused
from node.p2p.refusal_backoff import RefusalBackoff
from primitives import codec

log = logging.getLogger("node.ledger.service")


class LedgerRepair:
    """Block sync, round-state pull, value fetch, the handshake, and serving `/ehrnet/ledger/1.0.0`."""

    repair_interval_s = 0.5
    # Consensus gossip is best-effort: while a height makes no progress, our own votes and proposal are sent
    # again about once a second (docs/CONSENSUS.md §6), and after longer a peer is asked for its round state.
    regossip_after_s = 1.0
    pull_after_s = 2.5
    # How long a compact proposal waits for missing transactions to arrive by tx gossip before the block is
    # fetched from a peer by hash.
    compact_wait_s = 0.4
    # A value the machine lacks is asked for again after these pauses (doubling) until it arrives.
    fetch_retry_first_s = 0.1
    fetch_retry_max_s = 2.0
    try_first_peers = 3
    # One handshake at a time: with several in flight per node (4, or every new peer at once), a 16-node network
    # started on a busy 2-core machine did not mesh within 150-240 s (connections failed their security
    # upgrade over and over); one at a time it meshed in 16-29 s at load 24-28, like the code before.
    max_handshakes_in_flight = 1

    # State owned by the service (ledger_service.LedgerService).
    host: P2PHost
    genesis: Genesis
    chain_id: str
    registry: Registry
    store: ChainStore
    mempool: Mempool
    app: ChainApp
    machine: ConsensusMachine
    _closed: bool  # stopped: the store is closed
    committed_at: dict[bytes, float]
    last_block_time_ms: int
    malformed_messages: int
    block_sync: BlockSync
    _last_progress: float
    _idle: tuple[int, ValidatorSet, asyncio.TimerHandle] | None
    _last_regossip: float
    _last_pull: float
    _verified_peers: set[str]
    _rejected_peers: set[str]
    _refusals: RefusalBackoff
    _compact: dict[bytes, wire.CompactBlock]
    _fetching: set[bytes]

    # Provided by the service.
    def _submit(self, item: ConsensusInput) -> None:
        raise NotImplementedError

    def _spawn(self, work: Coroutine[object, object, None]) -> None:
        raise NotImplementedError

    def _feed(self, batch: ConsensusBatch) -> None:
        raise NotImplementedError

    def _regossip(self) -> None:
        raise NotImplementedError

    def _remember_block(self, block: Block) -> None:
        raise NotImplementedError

    def _compact_message(self, proposal: Proposal, value: bytes | None) -> ProposalMessage:
        raise NotImplementedError

    def _go_on(self) -> None:
        raise NotImplementedError

    def _final_height(self) -> int:
        return self.store.height

    def _peers_to_sync_from(self) -> list[str]:
        """Connected peers not rejected by the handshake. A gossip message (signed by its origin, a member) can
        show that a peer is ahead before our handshake with it has finished, and every synced block's commit is
        checked anyway, so the handshake is not waited for."""
        return [p for p in self.host.connected_peers() if p not in self._rejected_peers]

    async def _repair_loop(self) -> None:
        self._refusals = RefusalBackoff()  # peers that refused the ledger protocol: asked again after a backoff
        self._handshaking: set[str] = set()
        self._handshake_retry: dict[str, tuple[float, float]] = {}  # peer -> (not before, last pause)
        # The first few peers are asked for blocks on their handshake (block_sync.try_peer): enough to hedge
        # against one slow connection after a restart, few enough that a large network's start stays cheap.
        self._tried: set[str] = set()
        while True:
            # Handshakes first, and at once on start: a restarted node learns from them that it is behind.
            self._check_new_peers()
            await asyncio.sleep(self.repair_interval_s)
            now = time.monotonic()
            if self._idle is not None:
                # Waiting for work on purpose (an idle chain: node/ledger/timing.py), not stalled: a
                # peer that moves on wakes us with its messages, and the idle timer ends the wait anyway.
                self._last_progress = now
            stalled = now - self._last_progress
            # Block sync starts as soon as a peer shows it is ahead (node/ledger/sync/block_sync.py); this tick is only
            # its slow fallback (one peer's status after a long stall) and the retry of a peer that failed.
            self.block_sync.tick(stalled)
            if self._idle is not None:
                continue
            if stalled > self.regossip_after_s and now - self._last_regossip > self.regossip_after_s:
                self._last_regossip = now
                self._regossip()
            if stalled > self.pull_after_s and now - self._last_pull > self.pull_after_s:
                self._last_pull = now
                await self._pull_round_state()

    def _check_new_peers(self) -> None:
        """Handshake new peers, `max_handshakes_in_flight` at a time, without holding up the loop. A failed
        handshake is tried again after a pause that doubles: when a large network starts on a busy machine,
        requests retried every loop turn on top of the connection setup kept nodes from ever meshing."""
        connected = self.host.connected_peers()
        self._refusals.keep_only(connected)
        now = time.monotonic()
        for peer in connected:
            if len(self._handshaking) >= self.max_handshakes_in_flight:
                break
            if peer in self._verified_peers or peer in self._rejected_peers or peer in self._handshaking:
                continue
            if not self._refusals.may_ask(peer, now):
                continue  # refused the ledger protocol lately: a light client or a foreign peer
            if self._handshake_retry.get(peer, (0.0, 0.0))[0] > now:
                continue
            self._handshaking.add(peer)
            self._spawn(self._handshake(peer))
            if len(self._tried) < self.try_first_peers and peer not in self._tried:
                self._tried.add(peer)
                self.block_sync.try_peer(peer)  # behind it? (restarted, wiped): its blocks come with the answer

    async def _handshake(self, peer: str) -> None:
        """A peer on another chain ID or genesis is disconnected and ignored; one that is ahead of us (we were
        restarted or wiped) starts block sync from it at once."""
        try:
            try:
                raw = await self.host.request(peer, wire.LEDGER_PROTOCOL, wire.status_request())
                status = wire.PeerStatus.decode(raw)
            except ProtocolRefused:
                delay = self._refusals.refused(peer, time.monotonic())
                log.debug("peer %s does not serve %s: asking again in %.0f s", peer, wire.LEDGER_PROTOCOL, delay)
                return
            except (P2PError, wire.WireError):
                # Not ready yet (a node still starting): try again after a pause, 1 s doubling to 8 s.
                pause = min(2 * self._handshake_retry.get(peer, (0.0, 0.5))[1], 8.0)
                self._handshake_retry[peer] = (time.monotonic() + pause, pause)
                return
            self._handshake_retry.pop(peer, None)
            self._refusals.answered(peer)
            if status.chain_id != self.chain_id or status.genesis_hash != self.genesis.hash():
                log.warning("peer %s is on chain %s with another genesis: disconnecting", peer, status.chain_id)
                self._rejected_peers.add(peer)
                await self.host.disconnect(peer)
            else:
                self._verified_peers.add(peer)
                self.block_sync.showed_final(peer, status.height)
        finally:
            self._handshaking.discard(peer)

    def _good_peers(self) -> list[str]:
        peers = [p for p in self.host.connected_peers() if p in self._verified_peers]
        random.shuffle(peers)
        return peers

    async def _import(self, entries: list[tuple[bytes, codec.Value]]) -> bool:
        store, mempool = self.store, self.mempool
        imported = 0
        for block_bytes, commit_value in entries:
            # Each block is verified and executed on the event loop: yield between blocks, or a batch of 64 holds
            # the loop for seconds on a busy machine — pings go unanswered and peers drop the very connection the
            # next batch would come over.
            await asyncio.sleep(0)
            if self._closed:
                return False  # stopped meanwhile
            try:
                block = decode_block(
                    block_bytes,
                    chain_id=self.chain_id,
                    max_block_bytes=self.genesis.params.max_block_bytes,
                    max_tx_bytes=self.genesis.params.max_tx_bytes,
                )
                if block.height <= store.height:
                    continue  # finalised by consensus while the batch was on its way
                if block.height != store.height + 1:
                    break
                commit = Commit.from_value(commit_value)
                # Signatures this node checked already (admitted, or in a proposal it validated) are not checked again.
                result = store.import_block(block, commit, self.registry, preverified=mempool.checked)
            except LedgerError as exc:
                log.warning("a synced block failed verification: %s", exc)
                return False
            mempool.update(block.txs)
            now = time.monotonic()
            for tx in block.txs:
                self.committed_at[tx.hash] = now
            self.last_block_time_ms = block.header.time_ms
            self._last_progress = now
            self._remember_block(block)
            imported += 1
            del result
        if imported:
            log.info("synced to height %d", store.height)
            self._go_on()
        return imported > 0

    async def _pull_round_state(self) -> None:
        """Ask a peer for the proposals and votes it holds at our height (gossip may have lost some)."""
        store = self.store
        for peer in self._good_peers()[:1]:
            try:
                raw = await self.host.request(
                    peer,
                    wire.LEDGER_PROTOCOL,
                    wire.round_state_request(store.height + 1),
                    timeout_s=3,
                    max_response_bytes=wire.MAX_GOSSIP_BYTES,
                )
                self._feed(ConsensusBatch.decode(raw))
            except (P2PError, MessageError) as exc:
                log.debug("round state from %s: %s", peer, exc)

    async def _fetch_value(self, height: int, value_hash: bytes) -> None:
        """Find the block behind `value_hash` and hand it to the machine: from a compact proposal once tx gossip
        has brought its transactions, else from any peer that holds it — again and again, with backoff, until it
        is obtained or the height is over. One pass over the peers was not enough: right after a restart no peer
        may be reachable yet, and a validator that never gets the block its peers are locked on splits the vote
        in every round (docs/CONSENSUS.md, "Re-proposals after a crash"). One fetch per value at a time."""
        if value_hash in self._fetching:
            return
        self._fetching.add(value_hash)
        try:
            await self._fetch_until_obtained(height, value_hash)
        finally:
            self._fetching.discard(value_hash)

    def _value_settled(self, height: int, value_hash: bytes) -> bool:
        machine = self.machine
        return machine.height != height or machine.decision is not None or machine.value(value_hash) is not None

    async def _fetch_until_obtained(self, height: int, value_hash: bytes) -> None:
        app, mempool = self.app, self.mempool
        schedule = ValueFetchSchedule(
            time.monotonic(),
            compact_wait_s=self.compact_wait_s,
            poll_s=0.05,
            retry_first_s=self.fetch_retry_first_s,
            retry_max_s=self.fetch_retry_max_s,
        )
        while not self._value_settled(height, value_hash):
            compact = self._compact.get(value_hash)
            block = compact.expand(mempool.get) if compact is not None else None
            if block is not None:
                rebuilt = block.encode()
                app.remember_encoding(rebuilt, block)
                self._submit(ReceiveValue(value_hash, rebuilt))
                return
            wait = schedule.wait_for_gossip(compact is not None, time.monotonic())
            if wait is not None:
                await asyncio.sleep(wait)  # tx gossip usually brings the missing transactions in time
                continue
            value = await self._value_from_peers(height, value_hash)
            if value is not None:
                self._submit(ReceiveValue(value_hash, value))
                return
            await asyncio.sleep(schedule.peers_failed())

    async def _value_from_peers(self, height: int, value_hash: bytes) -> bytes | None:
        """One pass over the connected peers, handshaken ones first; an answer counts only if it hashes to
        `value_hash` (so any peer may be asked, and a wrong answer just moves on to the next peer)."""
        app = self.app
        verified = self._good_peers()
        others = [p for p in self.host.connected_peers() if p not in verified and p not in self._rejected_peers]
        for peer in verified + others:
            if self._value_settled(height, value_hash):
                return None
            try:
                raw = await self.host.request(
                    peer,
                    wire.LEDGER_PROTOCOL,
                    wire.value_request(value_hash),
                    timeout_s=5,
                    max_response_bytes=wire.MAX_GOSSIP_BYTES,
                )
                value = wire.decode_value(raw)
            except (P2PError, wire.WireError):
                continue
            if value is not None and app.value_hash(value) == value_hash:
                return value
        return None

    async def _serve(self, peer: str, request: bytes) -> bytes:
        store, machine = self.store, self.machine
        if self._closed:
            raise P2PError("ledger stopped")
        try:
            req = wire.decode_request(request)
        except wire.WireError as exc:
            self.malformed_messages += 1
            log.info("malformed ledger request from %s: %s", peer, exc)
            return wire.encode_value(None)
        if req.type == "status":
            return wire.PeerStatus(self.chain_id, self.genesis.hash(), store.height).encode()
        if req.type == "blocks":
            entries: list[tuple[bytes, codec.Value]] = []
            size = 0
            for height in range(req.start, min(req.end, store.height) + 1):
                block_bytes, commit = store.get_block_bytes(height), store.get_commit(height)
                if block_bytes is None or commit is None:
                    break
                size += len(block_bytes)
                if entries and size > wire.SYNC_RESPONSE_BUDGET:
                    break
                entries.append((block_bytes, commit.to_value()))
            return wire.encode_blocks(entries)
        if req.type == "value":
            return wire.encode_value(machine.value(req.value_hash))
        # round_state: what we hold at that height (only useful if it is our height)
        if req.height != machine.height:
            return ConsensusBatch().encode()
        proposals = []
        for round_ in range(machine.round + 1):
            held = machine.proposal(round_)
            if held is not None:
                proposals.append(self._compact_message(*held))
        return ConsensusBatch(tuple(proposals), tuple(machine.votes())).encode()
