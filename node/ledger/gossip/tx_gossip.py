"""The ledger service's transaction gossip in, and its publishing of transactions and consensus batches out.

Split from `node/ledger/service.py` as a mixin (it works on the service's own state). What arrives here has passed
the topic's validator already (node/ledger/gossip/validation.py): only members' well-formed batches are delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from consensus.errors import TxError
from consensus.gossip_batch import ConsensusBatch, ProposalMessage
from consensus.mempool import Admission, Mempool
from consensus.votes import Vote
from node.ledger import wire
from node.ledger.gossip.tx_relay import send_batch
from node.p2p.bridge import P2PError, P2PHost, Subscription

log = logging.getLogger("node.ledger.service")


class LedgerGossipOut:
    """`_read_txs` (the txs topic into the mempool) and `_publish_loop` (our batches out, transactions first)."""

    tx_flush_s: float
    host: P2PHost
    chain_id: str
    mempool: Mempool
    malformed_messages: int
    _txs_sub: Subscription
    _flush: asyncio.Event
    _out_txs: list[bytes]
    _out_proposals: list[ProposalMessage]
    _out_votes: list[Vote]

    def _work_arrived(self) -> None:
        raise NotImplementedError

    async def _read_txs(self) -> None:
        mempool = self.mempool
        async for message in self._txs_sub:
            try:
                raws, reached = wire.decode_tx_batch(message.data)
            except wire.WireError as exc:
                self.malformed_messages += 1
                log.info("malformed tx gossip from %s: %s", message.origin, exc)
                continue
            fresh: list[bytes] = []
            for index, raw in enumerate(raws):
                with contextlib.suppress(TxError):  # committed meanwhile, or invalid: the sender's node told its client
                    if mempool.add_raw(raw)[1] is not Admission.KNOWN:
                        fresh.append(raw)
                    self._work_arrived()
                if index % 100 == 99:
                    await asyncio.sleep(0)  # admission costs ~0.15 ms a tx: let consensus messages in between
            try:  # on to the topic peers this batch has not reached (none when every member is connected to all)
                await send_batch(self.host, self._txs_sub.topic, fresh, reached, origin=message.origin)
            except P2PError as exc:
                log.info("tx relay failed (the block fetch covers it): %s", exc)

    async def _publish_loop(self) -> None:
        consensus_topic, txs_topic = wire.consensus_topic(self.chain_id), wire.txs_topic(self.chain_id)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flush.wait(), timeout=self.tx_flush_s)
            self._flush.clear()
            try:
                # Transactions first: a compact proposal names transactions that peers must already hold.
                while self._out_txs:
                    chunk, self._out_txs = self._out_txs[:1000], self._out_txs[1000:]
                    await send_batch(self.host, txs_topic, chunk)  # to every peer: node/ledger/gossip/tx_relay.py
                if self._out_proposals or self._out_votes:
                    batch = ConsensusBatch(tuple(self._out_proposals), tuple(self._out_votes))
                    self._out_proposals, self._out_votes = [], []
                    await self.host.publish(consensus_topic, batch.encode())
            except P2PError as exc:
                log.info("gossip publish failed (repair will cover it): %s", exc)
