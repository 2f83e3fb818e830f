"""What may travel on the ledger's gossip topics, judged before a message is delivered or forwarded.

The ledger service guards its two topics with these (`P2PHost.guard_topic`, node/p2p/guard.py); the bridge has
already checked the libp2p signature and that the forwarder and the originator are members
(docs/PROTOCOL.md §2, "Membership" and "Validation and scoring").

**Members** (`MeshMembers`): the peer IDs of the chain's explicit member list (consensus/membership.py) and of
every validator the node knows of (the set signing its next height and any set scheduled after it: validators
gossip votes, so they are members whatever the list says). On a *legacy chain* — its genesis has no member
list, as every chain made before members existed — the nodes of the network config are members too, which is
what such a network's nodes expected. Refreshed after every final block, so an `add_member` or `remove_member`
takes effect on the mesh from the block after the one holding it.

**Verdicts.** REJECT (the forwarder is penalised) only for what no honest member sends: a payload that does not
decode or breaks a bound, a message for another chain, a bad signature on a proposal or vote. IGNORE (dropped,
never penalised) for what an honest member can send while this node's view differs: heights outside a generous
window around our head (we lag, or it does, or it restarted), and signers outside the validator sets we know
(a set change we have not synced yet). Everything else is ACCEPTed. Transactions are checked for shape and chain
here; their signatures, nonces and balances are the mempool's business, which an honest member cannot always
foresee either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from consensus.errors import LedgerError
from consensus.gossip_batch import ConsensusBatch
from consensus.members import members
from consensus.messages import MessageError
from consensus.state import Getter, validator_schedule
from consensus.tx import Tx, decode_tx
from node.ledger import wire
from node.p2p.identity import peer_id_of_public_key
from node.p2p.types import GossipMessage, TopicGuard, Verdict

# Heights farther than this from our head are ignored, not judged: far enough that a node restarting or catching
# up (block sync moves it up to 64 blocks per request) never has its honest messages counted against it.
HEIGHT_WINDOW = 10_000


class MeshMembers:
    """The peer IDs allowed on the ledger's gossip topics, and the validator keys votes may be signed with."""

    def __init__(self, legacy_peer_ids: Iterable[str] = ()) -> None:
        self._legacy = frozenset(legacy_peer_ids)
        self._peer_ids: frozenset[str] = self._legacy
        self.validators: frozenset[bytes] = frozenset()

    def update(self, member_keys: Iterable[bytes], validator_keys: Iterable[bytes]) -> None:
        self.validators = frozenset(validator_keys)
        keys = set(member_keys) | self.validators
        self._peer_ids = self._legacy | {peer_id_of_public_key(key) for key in keys}

    def admits(self, peer_id: str) -> bool:
        return peer_id in self._peer_ids

    @property
    def peer_ids(self) -> frozenset[str]:
        return self._peer_ids


def refresh_members(mesh: MeshMembers, get: Getter, height: int) -> None:
    """Set `mesh` from the state after final block `height`: the chain's member list, and every validator set
    from the one that signed that block on (the sets scheduled after it gossip too)."""
    schedule = validator_schedule(get)
    in_force = [i for i, (first, _) in enumerate(schedule) if first <= max(height, 1)]
    validators = {key for _, keys in schedule[max(in_force, default=0) :] for key in keys}
    mesh.update(members(get), validators)


class LedgerGossipJudge:
    """The content checks of the consensus and transaction topics (run on every message, so kept cheap)."""

    def __init__(
        self,
        chain_id: str,
        members: MeshMembers,
        head_height: Callable[[], int],
        *,
        max_tx_bytes: int,
        window: int = HEIGHT_WINDOW,
        decoded: Callable[[Tx], None] | None = None,
    ) -> None:
        self.chain_id = chain_id
        self.members = members
        self._head = head_height
        self.max_tx_bytes = max_tx_bytes
        self.window = window
        # Told of each transaction decoded here, so the pool need not decode the same bytes again (Mempool.decoded).
        self._decoded = decoded

    def consensus(self, message: GossipMessage) -> Verdict:
        try:
            batch = ConsensusBatch.decode(message.data)
        except MessageError:
            return Verdict.REJECT
        signed = [(p.proposal.chain_id, p.proposal.height, p.proposal.proposer) for p in batch.proposals]
        signed += [(v.chain_id, v.height, v.validator) for v in batch.votes]
        if not signed:
            return Verdict.IGNORE  # nothing in it (honest nodes publish no empty batch)
        if any(chain_id != self.chain_id for chain_id, _, _ in signed):
            return Verdict.REJECT
        if not all(p.proposal.verify() for p in batch.proposals) or not all(v.verify() for v in batch.votes):
            return Verdict.REJECT
        head = self._head()
        if any(abs(height - (head + 1)) > self.window for _, height, _ in signed):
            return Verdict.IGNORE
        if any(signer not in self.members.validators for _, _, signer in signed):
            return Verdict.IGNORE
        return Verdict.ACCEPT

    def guard(self, guard_topic: Callable[[str, TopicGuard], None]) -> None:
        """Install this judge on the chain's two topics (`P2PHost.guard_topic`)."""
        guard_topic(wire.consensus_topic(self.chain_id), TopicGuard(self.members.admits, self.consensus))
        # Single-hop: the ledger sends each tx batch to every peer itself and relays it
        # (node/ledger/gossip/tx_relay.py).
        guard_topic(wire.txs_topic(self.chain_id), TopicGuard(self.members.admits, self.txs, single_hop=True))

    def txs(self, message: GossipMessage) -> Verdict:
        try:
            raws, _ = wire.decode_tx_batch(message.data)  # a malformed `reached` is rejected too
            if not raws:
                return Verdict.IGNORE
            chain_id, max_bytes = self.chain_id, self.max_tx_bytes
            txs = [decode_tx(raw, chain_id=chain_id, max_bytes=max_bytes, check_signature=False) for raw in raws]
        except (wire.WireError, LedgerError, ValueError):
            return Verdict.REJECT
        if self._decoded is not None:
            for tx in txs:
                self._decoded(tx)
        return Verdict.ACCEPT
