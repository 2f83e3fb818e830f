"""Byzantine validator modes, for fault-injection tests only (`ehrnet node run ... --unsafe-byzantine MODE`).

Tendermint stays safe while at most f = ⌊(n − 1)/3⌋ validators are faulty, whatever they do (Buchman, Kwon,
Milosevic 2018, §4): with 4 validators, one may lie freely and the other three must still never finalise two
blocks at one height. These modes make one real node lie, so tests and chaos experiments can check exactly that
on a real cluster.

The node runs the ordinary ledger service, whose machine, sign guard and repair path stay honest; what turns it
hostile is `ByzantineHost`, the stand-in for its libp2p host that the composition root hands to the ledger service
(and to nothing else). It rewrites what the service publishes and serves:

- `equivocate`: for each of its own proposals it also builds a second valid block for the same (height, round)
  (same parent and transactions, a later timestamp: another hash) and signs a second proposal; for each of its
  own votes it signs a conflicting one (for that second block, or nil, or for a hash no block has). The connected
  peers are split into two halves, and each half gets one version, sent directly to its members rather than
  gossiped (`P2PHost.publish_to`), so no node gets both versions from the equivocator. Honest nodes gossip on
  what they received, so each soon holds two conflicting signed votes, which its machine turns into evidence.
- `invalid-block`: its proposals name invalid blocks instead — alternately one whose header carries a wrong state
  root, and one that includes a transaction with a broken signature (served on request, as a real block would be).
- `include-unallowlisted`: its proposals carry one more transaction, from a key no admin allowlisted, in a block
  built as if the chain were open — every root right, so on an `accounts = "allowlist"` chain the account rule is
  the only thing wrong with it (docs/LEDGER.md, "Account permissioning"). The key is the node's own throwaway
  `outsider` (shown in its fault status), always at nonce 0, since no such block may ever be final.
- `malformed`: besides behaving honestly, it keeps sending garbage: undecodable, wrongly shaped and oversized
  messages on the consensus and transaction topics, and malformed, oversized and truncated requests on the
  ledger's request–response protocol.

The "same key on two nodes" case needs no mode: a second process run with a copy of a validator's key
(docs/FAULTS.md). Its sign guard is in its own data dir, so the two sign whatever their machines decide.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from consensus.block import Block, merkle_root
from consensus.errors import LedgerError
from consensus.execute import build_block
from consensus.gossip_batch import MAX_BATCH_ITEMS, ConsensusBatch, ProposalMessage
from consensus.proposal import Proposal
from consensus.tx import Tx, decode_tx
from consensus.votes import Vote
from node.ledger import wire
from node.p2p.bridge import P2PError, P2PHost, RequestHandler
from node.service import Service
from primitives import codec
from primitives.keys import SigningKey

if TYPE_CHECKING:
    from node.ledger.service import LedgerService

log = logging.getLogger(__name__)

MODES = ("equivocate", "invalid-block", "include-unallowlisted", "malformed")
GARBAGE_INTERVAL_S = 0.5


class ByzantineHost:
    """The ledger service's view of the network on a byzantine node: the real host, except for what the mode
    rewrites (`publish` on the consensus topic, the ledger protocol's `value` answers). Everything else is the
    real host's own attribute."""

    def __init__(self, host: P2PHost, mode: str, key: SigningKey, chain_id: str) -> None:
        if mode not in MODES:
            raise ValueError(f"byzantine mode: one of {', '.join(MODES)}, not {mode!r}")
        self._host = host
        self.mode = mode
        self.key = key
        self.chain_id = chain_id
        self.ledger: LedgerService | None = None
        self._consensus_topic = wire.consensus_topic(chain_id)
        self._forged_values: dict[bytes, bytes] = {}  # forged block hash → block bytes, served on request
        self._forged: dict[tuple[int, int], ProposalMessage] = {}  # (height, round) → our second proposal
        self.counts = {"forged_proposals": 0, "conflicting_votes": 0, "split_sends": 0, "garbage_sent": 0}
        self.outsider = SigningKey.generate()  # include-unallowlisted: the sender no admin ever allowlisted

    def attach(self, ledger: LedgerService) -> None:
        """The ledger service this host serves (built after the host, so handed over afterwards)."""
        self.ledger = ledger

    def __getattr__(self, name: str) -> Any:
        return getattr(self._host, name)

    def status(self) -> dict[str, object]:
        return {"mode": self.mode, **self.counts, "outsider": self.outsider.public_key.hex()}

    # ---- what the ledger publishes ----------------------------------------------------------------------

    async def publish(self, topic: str, data: bytes) -> None:
        if topic != self._consensus_topic or self.mode == "malformed":
            await self._host.publish(topic, data)
            return
        forged: bytes | None = None
        try:
            batch = ConsensusBatch.decode(data)
            if self.mode in ("invalid-block", "include-unallowlisted"):
                lie = self._invalid if self.mode == "invalid-block" else self._with_unallowlisted
                proposals = tuple(lie(item) for item in batch.proposals)
                forged = dataclasses.replace(batch, proposals=proposals).encode()
        except (LedgerError, ValueError) as exc:  # MessageError is a ValueError
            # Lying failed (e.g. the chain moved on under us): publish honestly rather than end the ledger service,
            # whose publish loop only expects network errors.
            log.warning("byzantine %s: could not forge, publishing honestly: %s", self.mode, exc)
            await self._host.publish(topic, data)
            return
        if forged is not None:
            await self._host.publish(topic, forged)
            return
        await self._equivocate(topic, batch)

    async def _equivocate(self, topic: str, batch: ConsensusBatch) -> None:
        peers = sorted(self._host.connected_peers())
        half_a, half_b = peers[: (len(peers) + 1) // 2], peers[(len(peers) + 1) // 2 :]
        try:
            other = ConsensusBatch(
                tuple(self._second_proposal(item) for item in batch.proposals),
                tuple(self._conflicting_vote(vote) for vote in batch.votes),
            )
        except (LedgerError, ValueError) as exc:
            log.warning("byzantine equivocate: could not forge, publishing honestly: %s", exc)
            await self._host.publish(topic, batch.encode())
            return
        sent = await self._host.publish_to(topic, batch.encode(), half_a)
        sent += await self._host.publish_to(topic, other.encode(), half_b)
        self.counts["split_sends"] += 1
        log.debug("equivocating: %d message(s), two versions, written to %d peer(s)", len(other), sent)

    def _ours(self, proposal: Proposal) -> Block | None:
        """Our own proposed block, decoded (None for anything we cannot rebuild)."""
        ledger = self.ledger
        if ledger is None or proposal.proposer != self.key.public_key:
            return None
        value = ledger.machine.value(proposal.value_hash)
        if value is None:
            return None
        try:
            return ledger.app.block_of(value)
        except LedgerError:
            return None

    def _second_proposal(self, item: ProposalMessage) -> ProposalMessage:
        """A second valid block for the same slot: same parent and transactions, one millisecond later."""
        proposal = item.proposal
        slot = (proposal.height, proposal.round)
        if slot in self._forged:
            return self._forged[slot]
        block, ledger = self._ours(proposal), self.ledger
        if block is None or ledger is None or ledger.store.height + 1 != proposal.height:
            return item
        store = ledger.store
        with store.reader() as reader:
            second, _ = build_block(
                reader,
                store.head,
                block.txs,
                proposer=self.key.public_key,
                time_ms=block.header.time_ms + 1,
                params=store.genesis.params,
                registry=ledger.registry,
            )
        forged = self._forge(item, second)
        self._forged[slot] = forged
        log.warning("equivocating at height %d round %d: second block %s", *slot, second.hash.hex()[:16])
        return forged

    def _invalid(self, item: ProposalMessage) -> ProposalMessage:
        """Our proposal replaced by an invalid block: a wrong state root, or a transaction whose signature fails."""
        proposal = item.proposal
        slot = (proposal.height, proposal.round)
        if slot in self._forged:
            return self._forged[slot]
        block = self._ours(proposal)
        if block is None:
            return item
        if self.counts["forged_proposals"] % 2 == 0:
            bad_root = hashlib.sha256(b"not the state root" + block.header.state_root).digest()
            invalid = Block(dataclasses.replace(block.header, state_root=bad_root), block.txs)
            what = "a wrong state root"
        else:
            txs = (*block.txs, self._badly_signed_tx(proposal.height))
            header = dataclasses.replace(block.header, tx_root=merkle_root([tx.hash for tx in txs]))
            invalid = Block(header, txs)
            what = "a transaction whose signature fails"
        forged = self._forge(item, invalid)
        self._forged[slot] = forged
        log.warning("proposing an invalid block at height %d round %d (%s)", *slot, what)
        return forged

    def _with_unallowlisted(self, item: ProposalMessage) -> ProposalMessage:
        """Our proposal rebuilt with a transaction from `outsider` added, executed as if accounts were open."""
        proposal = item.proposal
        slot = (proposal.height, proposal.round)
        if slot in self._forged:
            return self._forged[slot]
        block, ledger = self._ours(proposal), self.ledger
        if block is None or ledger is None or ledger.store.height + 1 != proposal.height:
            return item
        store = ledger.store
        body: dict[str, codec.Value] = {"key": b"unallowlisted", "value": proposal.height.to_bytes(8, "big")}
        outsider_tx = Tx.create(self.outsider, self.chain_id, "record", 0, body)
        with store.reader() as reader:
            forged_block, _ = build_block(
                reader,
                store.head,
                (*block.txs, outsider_tx),
                proposer=self.key.public_key,
                time_ms=block.header.time_ms,
                params=dataclasses.replace(store.genesis.params, accounts="open"),
                registry=ledger.registry,
            )
        forged = self._forge(item, forged_block)
        self._forged[slot] = forged
        log.warning("proposing a block with an unallowlisted sender's transaction at height %d round %d", *slot)
        return forged

    def _badly_signed_tx(self, height: int) -> Tx:
        tx = Tx.create(self.key, self.chain_id, "record", 0, {"key": b"forged", "value": height.to_bytes(8, "big")})
        assert tx.raw.endswith(tx.signature)
        raw = tx.raw[:-64] + bytes(b ^ 0xFF for b in tx.signature)
        return decode_tx(raw, chain_id=self.chain_id, max_bytes=len(raw), check_signature=False)

    def _forge(self, item: ProposalMessage, block: Block) -> ProposalMessage:
        """A signed proposal for `block` in `item`'s slot, its block served to whoever asks for it by hash."""
        proposal = item.proposal
        forged = Proposal(
            proposal.chain_id, proposal.height, proposal.round, proposal.pol_round, block.hash, proposal.proposer
        ).signed(self.key)
        self._forged_values[block.hash] = block.encode()
        while len(self._forged_values) > 64:
            self._forged_values.pop(next(iter(self._forged_values)))
        self.counts["forged_proposals"] += 1
        return dataclasses.replace(item, proposal=forged, value=wire.CompactBlock.of(block).encode())

    def _conflicting_vote(self, vote: Vote) -> Vote:
        """Our vote's twin for the same slot and kind but another value: the second block of that round if we
        forged one, else nil for a block vote, else a hash no block has."""
        if vote.validator != self.key.public_key:
            return vote
        forged = self._forged.get((vote.height, vote.round))
        if forged is not None and forged.proposal.value_hash != vote.block_hash:
            other: bytes | None = forged.proposal.value_hash
        elif vote.block_hash is not None:
            other = None
        else:
            other = hashlib.sha256(b"no such block" + vote.height.to_bytes(8, "big")).digest()
        self.counts["conflicting_votes"] += 1
        return dataclasses.replace(vote, block_hash=other, signature=b"").signed(self.key)

    # ---- what the ledger serves -------------------------------------------------------------------------

    def set_request_handler(self, protocol: str, handler: RequestHandler, *args: Any, **kwargs: Any) -> None:
        if protocol != wire.LEDGER_PROTOCOL:
            self._host.set_request_handler(protocol, handler, *args, **kwargs)
            return

        async def serve(peer: str, request: bytes) -> bytes:
            try:
                decoded = wire.decode_request(request)
            except wire.WireError:
                return await handler(peer, request)
            forged = self._forged_values.get(decoded.value_hash) if decoded.type == "value" else None
            return wire.encode_value(forged) if forged is not None else await handler(peer, request)

        self._host.set_request_handler(protocol, serve, *args, **kwargs)


class GarbageSender(Service):
    """`malformed` mode: every half second, one kind of garbage to every peer, in turn (seeded, so a run can be
    repeated)."""

    name = "byzantine-garbage"

    def __init__(self, host: P2PHost, chain_id: str, counts: dict[str, int], seed: int = 0) -> None:
        self.host = host
        self.chain_id = chain_id
        self.counts = counts
        self.rng = random.Random(seed)
        self.kinds: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("random bytes on the consensus topic", self._random_consensus),
            ("a wrongly shaped consensus batch", self._wrong_shape),
            ("a consensus batch over the item limit", self._too_many_items),
            ("a vote with a broken signature", self._bad_vote),
            ("an oversized transaction batch", self._oversized_txs),
            ("garbage transactions", self._garbage_txs),
            ("a malformed ledger request", self._bad_request),
            ("an oversized ledger request", self._oversized_request),
            ("a truncated ledger request", self._truncated_request),
        ]

    async def start(self) -> None:
        log.warning("byzantine mode 'malformed': sending garbage to every peer")

    async def run(self) -> None:
        turn = 0
        while True:
            await asyncio.sleep(GARBAGE_INTERVAL_S)
            what, send = self.kinds[turn % len(self.kinds)]
            turn += 1
            try:
                await send()
            except P2PError as exc:  # refused or reset: what a well-defended peer does with garbage
                log.debug("garbage (%s) refused: %s", what, exc)
            self.counts["garbage_sent"] += 1

    async def stop(self) -> None:
        return None

    def _topic(self) -> str:
        return wire.consensus_topic(self.chain_id)

    async def _random_consensus(self) -> None:
        await self.host.publish(self._topic(), self.rng.randbytes(self.rng.randint(1, 4096)))

    async def _wrong_shape(self) -> None:
        await self.host.publish(self._topic(), codec.encode({"proposals": "none", "votes": [1, 2, 3]}))

    async def _too_many_items(self) -> None:
        await self.host.publish(self._topic(), codec.encode({"proposals": [], "votes": [0] * (MAX_BATCH_ITEMS + 1)}))

    async def _bad_vote(self) -> None:
        vote: dict[str, codec.Value] = {
            "kind": 1,
            "chain_id": self.chain_id,
            "height": self.rng.randint(1, 1 << 40),
            "round": 0,
            "block_hash": self.rng.randbytes(32),
            "validator": self.rng.randbytes(32),
            "signature": self.rng.randbytes(64),
        }
        await self.host.publish(self._topic(), codec.encode({"proposals": [], "votes": [vote]}))

    async def _oversized_txs(self) -> None:
        # Just under the gossip limit (larger is refused by our own host): 3.5 MB of one "transaction".
        await self.host.publish(wire.txs_topic(self.chain_id), wire.encode_txs([bytes(3_500_000)]))

    async def _garbage_txs(self) -> None:
        raws = [self.rng.randbytes(self.rng.randint(1, 300)) for _ in range(200)]
        await self.host.publish(wire.txs_topic(self.chain_id), wire.encode_txs(raws))

    async def _each_peer(self, payload: bytes, **kwargs: Any) -> None:
        for peer in self.host.connected_peers():
            try:
                await self.host.request(peer, wire.LEDGER_PROTOCOL, payload, timeout_s=2, **kwargs)
            except P2PError:
                continue

    async def _bad_request(self) -> None:
        await self._each_peer(codec.encode({"type": "blocks", "from": -5, "to": "x"}))

    async def _oversized_request(self) -> None:
        await self._each_peer(bytes(100_000))

    async def _truncated_request(self) -> None:
        for peer in self.host.connected_peers():
            try:
                stream = await self.host.open_stream(peer, wire.LEDGER_PROTOCOL)
                await stream.write(b"\xe8\x07" + bytes(100))  # announces 1,000 bytes, sends 100, then leaves
                await stream.close()
            except P2PError:
                continue


def byzantine_parts(host: P2PHost, mode: str, key: SigningKey, chain_id: str) -> tuple[ByzantineHost, list[Service]]:
    """The host stand-in for the ledger service, and the services the mode adds (garbage for `malformed`)."""
    stand_in = ByzantineHost(host, mode, key, chain_id)
    services: list[Service] = []
    if mode == "malformed":
        services.append(GarbageSender(host, chain_id, stand_in.counts))
    return stand_in, services
