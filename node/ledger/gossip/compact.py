"""Compact blocks in proposals: how a proposal's block is written for gossip and rebuilt from the mempool.

Every validator already holds nearly all of a proposed block's transactions (they were gossiped on the txs topic
first), so a proposal names them by hash (`ledger_wire.CompactBlock`) and the receiver rebuilds the exact block
bytes from its mempool (docs/PROTOCOL.md §10). What cannot be rebuilt is fetched by hash (node/ledger/repair.py).
A mixin of `LedgerService`, split from it so that each module stays one concept: it works on the service's state.
"""

from __future__ import annotations

import logging

from consensus.genesis import Genesis
from consensus.gossip_batch import ProposalMessage
from consensus.machine import ConsensusMachine
from consensus.mempool import Mempool
from consensus.proposal import Proposal
from node.ledger import wire
from node.ledger.chain_app import ChainApp

log = logging.getLogger("node.ledger.service")


class CompactProposals:
    # State owned by the service (ledger_service.LedgerService).
    genesis: Genesis
    app: ChainApp
    mempool: Mempool
    machine: ConsensusMachine
    malformed_messages: int
    _compact: dict[bytes, wire.CompactBlock]

    def _compact_message(self, proposal: Proposal, value: bytes | None) -> ProposalMessage:
        """A proposal as it is gossiped: with its block in compact form (header and tx hashes), except a
        re-proposal (`pol_round` ≥ 0), which goes whole: a validator restarted since the block was first proposed
        lacks its transactions (docs/CONSENSUS.md, "Re-proposals after a crash")."""
        app = self.app
        if value is None:
            return ProposalMessage(proposal, None)
        if proposal.pol_round >= 0:
            return ProposalMessage(proposal, value, full=True)
        return ProposalMessage(proposal, wire.CompactBlock.of(app.block_of(value)).encode())

    def _expand(self, proposal: Proposal, data: bytes) -> bytes | None:
        """Rebuild a gossiped compact block from the mempool; None (the machine then asks for the value by hash,
        see `_fetch_value`) when it is malformed, does not match the proposal, or transactions are missing."""
        machine, app, mempool = self.machine, self.app, self.mempool
        if machine.value(proposal.value_hash) is not None or proposal.value_hash in self._compact:
            return None
        try:
            compact = wire.CompactBlock.decode(data, max_txs=self.genesis.params.max_block_txs)
        except wire.WireError as exc:
            self.malformed_messages += 1
            log.info("malformed compact block in a proposal: %s", exc)
            return None
        if compact.header.hash != proposal.value_hash:
            self.malformed_messages += 1
            return None
        block = compact.expand(mempool.get)
        if block is None:
            self._compact[proposal.value_hash] = compact
            return None
        value = block.encode()
        app.remember_encoding(value, block)
        return value
