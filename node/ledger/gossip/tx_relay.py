"""Transaction batches delivered once to each node, instead of once per mesh neighbour.

Through gossipsub's mesh a batch reaches each node of a 4-node network three times: from its publisher and
forwarded by each of the two other receivers; the library drops the repeats only after it has read, decrypted and
parsed them, and in the ledger benchmark that reading was the largest cost after the signature checks. Members
normally hold a connection to every other member (a network config's nodes dial all others by default), so the
txs topic is *single-hop* (`TopicGuard.single_hop`: the router never forwards it) and relaying is done here:

- the publisher writes a batch straight to every peer on the topic and names them in it as `reached`
  (`node/ledger/wire.py`, `encode_txs`);
- a receiver relays what it newly admitted only to its topic peers the batch does not name, adding them.

With full connectivity no one relays and each node receives each batch once. Where a config limits who dials whom,
the relays fill in, and a node reached twice drops the repeat by transaction hash before any signature check
(`Mempool.add_raw`). A member that lies about `reached` can only withhold transactions, which it could do anyway
by not relaying; a node that misses a transaction fetches the block that holds it (docs/PROTOCOL.md §10).
"""

from __future__ import annotations

from collections.abc import Iterable

from node.ledger import wire
from node.p2p.bridge import P2PHost


def relay_targets(topic_peers: Iterable[str], reached: frozenset[str], own: str, origin: str = "") -> list[str]:
    """The topic peers a batch has not reached yet: not named in it, not us, not the peer it came from."""
    return sorted(set(topic_peers) - reached - {own, origin})


async def send_batch(
    host: P2PHost, topic: str, raw_txs: list[bytes], reached: frozenset[str] = frozenset(), origin: str = ""
) -> int:
    """Write `raw_txs` to every peer on `topic` that `reached` does not name; returns how many were written to.
    Raises P2PError when the host cannot send."""
    targets = relay_targets(host.gossip_peers(topic), reached, host.peer_id, origin)
    if not targets or not raw_txs:
        return 0
    data = wire.encode_txs(raw_txs, reached | set(targets) | {host.peer_id})
    return await host.publish_to(topic, data, targets)
