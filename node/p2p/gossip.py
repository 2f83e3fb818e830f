"""GossipSub as ehrnet runs it: py-libp2p 0.8.1's router and pubsub with the defaults that bite taken out.

Part of the libp2p bridge (like `node/p2p/bridge.py` it imports trio; nothing outside the bridge's `node/p2p/`
modules does). Each adjustment was seen on a running ehrnet network and checked in the library's source:

- **Adaptive gossip off.** `GossipSub(adaptive_gossip_enabled=True)` is the library's default. Its heartbeat
  re-scores "network health" every 30 s, and a small mesh (4 nodes against a target degree of 6) scores below
  0.4, so `_adapt_heartbeat_parameters` sets the heartbeat to `max(30, min(60, interval // 2))` = 30 s (60 s at a
  health below 0.7), whatever interval was configured. Meshes then repair in minutes instead of seconds.
- **A message cache bounded in seconds.** The GossipSub spec (v1.0, "Message Cache") keeps `mcache_len`
  heartbeats of messages and advertises the last `mcache_gossip`; py-libp2p also replays that window to every new
  subscriber. Counted in heartbeats, a stretched or late heartbeat stretches the cache with it (a fresh
  subscriber was sent consensus messages minutes old). `RecentMessageCache` applies the same bound in seconds.
- The two pubsub defects contained by `GuardedPubsub` (see its docstring).
- **Gated topics.** The mesh is permissioned (docs/PROTOCOL.md §2, "Membership"): on a topic with a guard, a peer
  the guard does not admit is kept out of the topic, not off the connection (a light client still uses
  request–response). Its SUBSCRIBE is ignored, so it is never in `peer_topics`, never picked for the mesh and
  never sent the topic's messages; its GRAFT is answered with a PRUNE and its IHAVE is not followed up. What it
  publishes anyway is rejected by the topic validator (`node/p2p/bridge.py`), which the library runs before forwarding.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import time
import weakref
from collections.abc import Callable
from typing import Any

import trio
from libp2p.pubsub import pubsub as pubsub_module
from libp2p.pubsub import rpc_queue
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.mcache import MessageCache, default_msg_id_fn
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.pubsub.validators import PUBSUB_SIGNING_PREFIX

from node.p2p.guard import GossipGuards
from node.p2p.types import GossipLimits

log = logging.getLogger(__name__)

# The GossipSub spec's defaults (v1.0 "Parameters": mcache_len 5, mcache_gossip 3), in heartbeats.
GOSSIP_HISTORY_HEARTBEATS = 5
GOSSIP_WINDOW_HEARTBEATS = 3


class RecentMessageCache(MessageCache):
    """The GossipSub message cache with its heartbeat bounds also enforced in seconds.

    A message is advertised (IHAVE) and replayed to new subscribers for at most `window × heartbeat` seconds and
    served to IWANT for at most `history × heartbeat` seconds after it entered the cache, however late the
    heartbeats that shift the cache run.
    """

    def __init__(
        self, window_size: int, history_size: int, heartbeat_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(window_size, history_size)
        self.window_s = window_size * heartbeat_s
        self.history_s = history_size * heartbeat_s
        self._clock = clock
        self._cached_at: dict[bytes, float] = {}

    def put(self, msg: Any) -> None:
        mid = default_msg_id_fn(msg)
        if mid not in self.msgs:
            self._cached_at[mid] = self._clock()
        super().put(msg)

    def get(self, mid: bytes) -> Any:
        if self._age(mid) > self.history_s:
            return None
        return super().get(mid)

    def window(self, topic: str) -> list[bytes]:
        return [mid for mid in super().window(topic) if self._age(mid) <= self.window_s]

    def shift(self) -> None:
        for entry in self.history[-1]:  # what the shift drops
            self._cached_at.pop(entry.mid, None)
        super().shift()

    def _age(self, mid: bytes) -> float:
        cached_at = self._cached_at.get(mid)
        return math.inf if cached_at is None else self._clock() - cached_at


class SteadyGossipSub(GossipSub):
    """GossipSub whose heartbeat stays at the configured interval, with a time-bounded message cache.

    `heartbeats` counts heartbeats run (each one starts with `mesh_heartbeat`), so tests and operators can see
    the interval the router really keeps.
    """

    def __init__(self, *, heartbeat_interval: int, **kwargs: Any) -> None:
        super().__init__(
            heartbeat_interval=heartbeat_interval,
            gossip_window=GOSSIP_WINDOW_HEARTBEATS,
            gossip_history=GOSSIP_HISTORY_HEARTBEATS,
            adaptive_gossip_enabled=False,
            **kwargs,
        )
        self.mcache = RecentMessageCache(GOSSIP_WINDOW_HEARTBEATS, GOSSIP_HISTORY_HEARTBEATS, heartbeat_interval)
        self.heartbeats = 0
        self.guards: GossipGuards | None = None  # the host's topic guards (who may join a topic, single-hop topics)

    def admits(self, peer_id: str, topic: str) -> bool:
        return self.guards is None or self.guards.admits(peer_id, topic)

    async def publish(self, msg_forwarder: Any, pubsub_msg: Any) -> None:
        # A single-hop topic's messages are never forwarded: their publisher sends each to every peer itself and
        # relays only to peers it knows were not reached (node/ledger/gossip/tx_relay.py), so a 4-node mesh delivers
        # each once instead of three times (once from the publisher, once from each other relay).
        if self.guards is not None and all(self.guards.single_hop(topic) for topic in pubsub_msg.topicIDs):
            return
        await super().publish(msg_forwarder, pubsub_msg)

    async def handle_graft(self, graft_msg: Any, sender_peer_id: Any) -> None:
        if not self.admits(str(sender_peer_id), graft_msg.topicID):
            log.debug("refused a GRAFT on %s from non-member %s", graft_msg.topicID, sender_peer_id)
            await self.emit_prune(graft_msg.topicID, sender_peer_id, False, False)
            return
        await super().handle_graft(graft_msg, sender_peer_id)

    async def handle_ihave(self, ihave_msg: Any, sender_peer_id: Any) -> None:
        if self.admits(str(sender_peer_id), ihave_msg.topicID):
            await super().handle_ihave(ihave_msg, sender_peer_id)

    def mesh_heartbeat(self) -> Any:
        self.heartbeats += 1
        return super().mesh_heartbeat()


class GuardedPubsub(Pubsub):
    """py-libp2p 0.8.1's Pubsub with two of its defects contained (found under load in the ledger benchmark):

    - its stream reader lets protobuf's DecodeError (one malformed RPC from a peer) escape the stream handler,
      which ends the whole host: here it costs the sender that stream, as other read errors already do;
    - its writers (our publishes, forwarding, heartbeat control) share one stream per peer, and yamux takes its
      write lock per 64 KiB frame, so two messages written at once could interleave on the wire and corrupt
      both; here each message is written whole under a per-stream lock.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._write_locks: weakref.WeakKeyDictionary[Any, trio.Lock] = weakref.WeakKeyDictionary()
        self.guards: GossipGuards | None = None  # the host's topic guards (who may join a topic; message counts)

    def admits(self, peer_id: str, topic: str) -> bool:
        return self.guards is None or self.guards.admits(peer_id, topic)

    async def push_msg(self, msg_forwarder: Any, msg: Any) -> None:
        # Every copy a peer sends counts, before the library drops repeats as seen: the guards' ratio of copies
        # received to messages judged is how often the mesh delivers one message to this node.
        if self.guards is not None and msg_forwarder != self.my_id:
            self.guards.count_received(msg.topicIDs)
        await super().push_msg(msg_forwarder, msg)

    def handle_subscription(self, origin_id: Any, sub_message: Any) -> None:
        if sub_message.subscribe and not self.admits(str(origin_id), sub_message.topicid):
            log.debug("ignored a subscription to %s from non-member %s", sub_message.topicid, origin_id)
            return
        super().handle_subscription(origin_id, sub_message)

    async def stream_handler(self, stream: Any) -> None:
        try:
            await super().stream_handler(stream)
        except Exception as exc:
            peer = stream.muxed_conn.peer_id
            log.warning(
                "dropped a gossip stream from %s after a malformed message: %s: %s", peer, type(exc).__name__, exc
            )
            with contextlib.suppress(Exception):
                await stream.reset()
            self._handle_dead_peer(peer)

    async def write_msg(self, stream: Any, rpc_msg: Any) -> bool:
        lock = self._write_locks.get(stream)
        if lock is None:
            lock = self._write_locks[stream] = trio.Lock()
        async with lock:
            return bool(await super().write_msg(stream, rpc_msg))


async def publish_direct(pubsub: Any, topic: str, data: bytes, targets: list[Any]) -> int:
    """Write one gossip message straight to `targets`' pubsub streams (not via the router); returns how many
    accepted it. Built and signed exactly as py-libp2p 0.8.1's `Pubsub.publish` does (`P2PHost.publish_to`)."""
    msg = rpc_pb2.Message(data=data, topicIDs=[topic], from_id=pubsub.my_id.to_bytes(), seqno=pubsub._next_seqno())
    if pubsub.strict_signing:
        signature = pubsub.sign_key.sign(PUBSUB_SIGNING_PREFIX.encode() + msg.SerializeToString())
        msg.key = pubsub.host.get_public_key().serialize()
        msg.signature = signature
    pubsub._mark_msg_seen(msg)
    rpc = rpc_pb2.RPC(publish=[msg])
    sent = 0
    for peer in targets:
        stream = pubsub.peers.get(peer)
        if stream is not None and await pubsub.write_msg(stream, rpc):
            sent += 1
    return sent


def raise_library_limits(limits: GossipLimits) -> None:
    """Replace the library's fixed 32-slot queues (module constants read at subscribe/connect time)."""
    pubsub_module.SUBSCRIPTION_CHANNEL_SIZE = limits.subscription_queue
    setattr(pubsub_module, "RpcQueue", functools.partial(rpc_queue.RpcQueue, max_size=limits.outbound_queue))  # noqa: B010
