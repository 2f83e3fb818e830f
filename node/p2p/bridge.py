"""The asyncio bridge to py-libp2p: the host, and the crossings between asyncio and trio.

py-libp2p 0.8.1 runs only on trio, while ehrnet is an asyncio program. We run trio in
*guest mode* on the asyncio loop (`trio.lowlevel.start_guest_run`): both runtimes share one thread, trio's
task steps run as asyncio callbacks and only its I/O wait sits in a helper thread. Crossing is cheap (~0.1 ms)
and needs no locks, because nothing runs concurrently with anything else.

Crossings:
- asyncio → trio: `TrioToken.run_sync_soon` schedules a trio task in the bridge's nursery; its result is put
  into an asyncio future. Cancelling the asyncio caller cancels the trio task.
- trio → asyncio: trio tasks call asyncio objects directly (same thread): gossip messages go into an asyncio
  queue per subscription; inbound requests and streams run their asyncio handlers as tasks the bridge owns.

The host is configured against py-libp2p's defaults that bite (measured; docs/PROTOCOL.md): Noise is the only security
transport (a plaintext dial is refused), yamux the only muxer, one connection per peer, gossipsub's per-topic
spam cap and queues raised deliberately, its heartbeat kept at the configured interval and its message cache
bounded in seconds (`node/p2p/gossip.py`), and the pubsub seqno seeded from `time.time_ns()` so a restarted
node's messages are not dropped as duplicates of its previous life. Peers can be blocked by peer ID and
connections closed even when the peer has stopped reading (`node/p2p/connections.py`), for fault injection, the
keepalive (`node/p2p/keepalive.py`) and bans; topics gated to members, messages judged first (`node/p2p/guard.py`).
The bridge is this module and its helpers in `node/p2p/`, the only modules in ehrnet that import trio.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import multiaddr
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.network.config import ConnectionConfig
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.tools.anyio_service import background_trio_service

from node.p2p import dedup as p2p_dedup
from node.p2p.connections import PeerGate, close_all, close_connections, open_stream_reconnecting, refused_protocol
from node.p2p.gossip import GuardedPubsub, SteadyGossipSub, publish_direct, raise_library_limits
from node.p2p.guard import GossipGuards
from node.p2p.peer_score import PeerScorer
from node.p2p.protocol_select import PipelinedSelect
from node.p2p.runtime import TrioRuntime, run_in_nursery

# The trio-free parts live in node/p2p/types.py; they are re-exported here so callers import one module.
from node.p2p.types import (
    MAX_DISCARD_BYTES,
    DialError,
    GossipLimits,
    GossipMessage,
    HostConfig,
    P2PError,
    P2PStream,
    ProtocolRefused,
    RequestError,
    RequestHandler,
    StreamClosed,
    StreamHandler,
    Subscription,
    TopicGuard,
    Verdict,
    answer_request,
)

__all__ = [
    "MAX_DISCARD_BYTES",
    "DialError",
    "GossipLimits",
    "GossipMessage",
    "HostConfig",
    "P2PError",
    "P2PHost",
    "P2PStream",
    "ProtocolRefused",
    "RequestError",
    "RequestHandler",
    "StreamClosed",
    "StreamHandler",
    "Subscription",
    "TopicGuard",
    "Verdict",
    "peer_id_from_seed",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long a stopping host waits for its connections and listeners to close before it is torn down anyway.
_SHUTDOWN_CLOSE_S = 3.0


def peer_id_from_seed(seed: bytes) -> str:
    """The libp2p peer ID (base58 multihash of the Ed25519 public key) that a seed gives."""
    return str(ID.from_pubkey(create_new_key_pair(seed).public_key))


def _peer_id(text: str) -> ID:
    try:
        return ID.from_base58(text)
    except Exception as exc:
        raise P2PError(f"bad peer ID {text!r}: {exc}") from exc


class P2PHost:
    """A libp2p host (Noise, yamux, TCP, gossipsub) driven from asyncio.

    Lifecycle: `await start()` listens and returns once the host is ready; `await stop()` shuts down in order
    (subscriptions, handlers, pubsub, host) and never raises.
    """

    def __init__(self, config: HostConfig) -> None:
        self._config = config
        self.peer_id = peer_id_from_seed(config.seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._host: Any = None
        self._pubsub: Any = None
        self._router: SteadyGossipSub | None = None
        self._stop_event: trio.Event | None = None
        self._runtime: TrioRuntime | None = None
        self._done: asyncio.Future[None] | None = None
        self._ready: asyncio.Future[None] | None = None
        self._subscriptions: dict[str, Subscription] = {}
        self._handler_tasks: set[asyncio.Task[None]] = set()
        self._gate = PeerGate()
        self._stopping = False
        self.listen_addrs: list[str] = []
        self._guards = GossipGuards(self.peer_id, PeerScorer(config.scoring), self._ban)

    # ---- lifecycle -------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True from a successful `start()` until the libp2p side ends (a `stop()`, or a failure)."""
        return self._done is not None and not self._done.done() and self._ready is not None and self._ready.done()

    async def wait_ended(self) -> None:
        """Return once the libp2p side has ended after `stop()`; raise P2PError if it ended by failing."""
        assert self._done is not None, "start() first"
        await asyncio.shield(self._done)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._ready = loop.create_future()
        self._done = loop.create_future()
        raise_library_limits(self._config.gossip)
        self._runtime = await TrioRuntime.acquire()
        self._token = self._runtime.token
        self._runtime.spawn(self._trio_main)
        try:
            await self._ready
        except BaseException:
            await self._runtime.release()
            self._runtime = None
            raise

    async def _trio_main(self) -> None:
        assert self._ready is not None and self._done is not None
        try:
            await self._run_host()
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(P2PError(f"libp2p host failed to start: {exc!r}"))
            if not self._done.done():
                self._done.set_exception(P2PError(f"libp2p host failed: {exc!r}"))
            if not isinstance(exc, Exception):
                raise
            return
        if not self._ready.done():
            self._ready.set_exception(P2PError("libp2p host stopped before it was ready"))
        if not self._done.done():
            self._done.set_result(None)

    async def _run_host(self) -> None:
        cfg = self._config
        key_pair = create_new_key_pair(cfg.seed)
        noise = NoiseTransport(key_pair, noise_privkey=create_x25519_key_pair().private_key)
        listen = multiaddr.Multiaddr(cfg.listen)
        host = new_host(
            key_pair=key_pair,
            sec_opt={TProtocol(NOISE_PROTOCOL_ID): noise},
            muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
            listen_addrs=[listen],
            connection_config=ConnectionConfig(max_connections_per_peer=1, dial_timeout=cfg.dial_timeout_s),
        )
        limits = cfg.gossip
        self._gate.install(host.get_network())
        PipelinedSelect.install(host)  # a stream's protocol agreed in one round trip, not two
        p2p_dedup.install(host.get_network(), host.get_id())  # crossing dials: both ends keep the same connection
        router = SteadyGossipSub(
            protocols=[PROTOCOL_ID_V11],
            degree=limits.degree,
            degree_low=limits.degree_low,
            degree_high=limits.degree_high,
            heartbeat_interval=limits.heartbeat_interval_s,
            heartbeat_initial_delay=0.1,
            spam_protection_enabled=True,
            max_messages_per_topic_per_second=limits.max_messages_per_topic_per_second,
            # Our peers are few and all on loopback: IP diversity would keep them out of each other's mesh.
            eclipse_protection_enabled=False,
        )
        pubsub = GuardedPubsub(host, router, max_inbound_rpc_size=limits.max_message_bytes)
        pubsub.guards = router.guards = self._guards
        for topic in self._guards.topics():
            pubsub.set_topic_validator(topic, self._guards.validator(topic), False)
        self._router = router
        # Seqnos seeded from nanoseconds: with the library's seconds-based seed a restarted node reuses the
        # seqnos of its last life and its messages are dropped as seen for 5–8 s (docs/ARCHITECTURE.md §4).
        pubsub.counter = time.time_ns()
        self._host, self._pubsub = host, pubsub
        self._stop_event = trio.Event()
        async with host.run(listen_addrs=[listen]), background_trio_service(pubsub), background_trio_service(router):
            await pubsub.wait_until_ready()
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self.listen_addrs = [f"{addr}" for addr in host.get_addrs()]
                assert self._ready is not None
                if not self._ready.done():
                    self._ready.set_result(None)
                await self._stop_event.wait()
                nursery.cancel_scope.cancel()
            self._nursery = None
            # Close connections and listeners before the library's services are cancelled: its own cleanup runs
            # under cancellation and never closed the TCP listener, so a stopped host went on accepting (and
            # completing handshakes) for as long as the trio run lived — the whole process, with other hosts.
            with trio.move_on_after(_SHUTDOWN_CLOSE_S), contextlib.suppress(Exception):
                await host.get_network().close()

    async def stop(self) -> None:
        """Ordered shutdown: handlers, subscriptions, then the trio side. Never raises."""
        if self._stopping or self._done is None or self._runtime is None:
            return
        self._stopping = True
        for task in list(self._handler_tasks):
            task.cancel()
        if self._handler_tasks:
            await asyncio.gather(*self._handler_tasks, return_exceptions=True)
        for sub in self._subscriptions.values():
            sub._deliver(None)
        if self._token is not None and self._stop_event is not None:
            stop_event = self._stop_event
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(stop_event.set)
        try:
            await asyncio.wait_for(asyncio.shield(self._done), timeout=10)
        except Exception as exc:  # a library error during teardown must not crash the node's shutdown
            log.warning("libp2p host shutdown: %s: %s", type(exc).__name__, exc)
        runtime, self._runtime = self._runtime, None
        await runtime.release()

    # ---- crossing from asyncio into trio ---------------------------------------------------------------

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run `fn` as a task in the bridge's trio nursery and await its result from asyncio."""
        token, nursery, loop = self._token, self._nursery, self._loop
        if token is None or nursery is None or loop is None or self._stopping:
            raise P2PError("the libp2p host is not running")
        return await run_in_nursery(loop, token, nursery, fn)

    # ---- connections ----------------------------------------------------------------------------------

    def connected_peers(self) -> list[str]:
        if self._host is None:
            return []
        return sorted(str(p) for p in self._host.get_connected_peers())

    async def dial(self, addr: str) -> str:
        """Connect to a peer by its full multiaddr (…/p2p/<peer id>); returns its peer ID."""
        try:
            info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
        except Exception as exc:
            raise DialError(f"bad peer address {addr!r}: {exc}") from exc
        if self._gate.blocks(str(info.peer_id)):
            raise DialError(f"peer {info.peer_id} is blocked by this host")
        host, timeout = self._host, self._config.dial_timeout_s

        async def connect() -> str:
            # The swarm refuses for 60 s to dial a peer whose dial failed (its negative cache): the caller's own
            # backoff decides when to retry, so a peer that comes back is reached on the next try.
            host.get_network().unblock_peer(info.peer_id)
            try:
                with trio.fail_after(timeout):
                    await host.connect(info)
            except trio.TooSlowError as exc:
                raise DialError(f"dialing {addr} timed out after {timeout} s") from exc
            except Exception as exc:
                raise DialError(f"dialing {addr} failed: {type(exc).__name__}: {exc}") from exc
            return str(info.peer_id)

        return await self._call(connect)

    async def disconnect(self, peer_id: str) -> bool:
        """Close the connection to `peer_id` once (a redial loop may reconnect); False if there was none.

        Bounded even when the peer has stopped reading (`node/p2p/connections.py`).
        """
        peer, host = _peer_id(peer_id), self._host

        async def close() -> bool:
            return await close_connections(host.get_network(), peer) > 0

        return await self._call(close)

    async def set_blocked_peers(self, peer_ids: Iterable[str]) -> None:
        """Refuse these peers until the next call: close their connections now, refuse their inbound connections
        and streams, and do not dial them (`dial` raises DialError). `set_blocked_peers(set())` heals.

        For fault injection where the runner cannot cut links; raises P2PError for a malformed peer ID (and then
        changes nothing).
        """
        wanted = {str(_peer_id(p)) for p in peer_ids}
        before = self._gate.blocked
        newly_blocked = self._gate.set_blocked(wanted)
        if self._gate.blocked != before:
            log.info("blocked peers now: %s", ", ".join(sorted(self._gate.blocked)) or "none")
        host = self._host
        if not newly_blocked or host is None or self._nursery is None or self._stopping:
            return

        await self._call(functools.partial(close_all, host.get_network(), newly_blocked))

    @property
    def blocked_peers(self) -> frozenset[str]:
        return self._gate.blocked

    # ---- gossip ---------------------------------------------------------------------------------------

    async def publish(self, topic: str, data: bytes) -> None:
        pubsub = self._pubsub
        if len(data) > self._config.gossip.max_message_bytes:
            raise P2PError(f"gossip message of {len(data)} bytes exceeds the configured limit")
        await self._call(functools.partial(pubsub.publish, topic, data))

    async def publish_to(self, topic: str, data: bytes, peers: list[str]) -> int:
        """Send one gossip message on `topic` to `peers` only, written to their pubsub streams directly instead of
        handed to the router (which would send it to the whole mesh). Receivers treat it as any gossip message and
        forward it on, unless the topic is single-hop. Used by the txs topic's relay (node/ledger/gossip/tx_relay.py)
        and the byzantine mode (node/faults/byzantine.py: two halves of the network see two different messages)."""
        if len(data) > self._config.gossip.max_message_bytes:
            raise P2PError(f"gossip message of {len(data)} bytes exceeds the configured limit")
        targets = [ID.from_base58(peer) for peer in peers]
        return await self._call(functools.partial(publish_direct, self._pubsub, topic, data, targets))

    def guard_topic(self, topic: str, guard: TopicGuard) -> None:
        """Gate `topic` (node/p2p/guard.py): peers `guard` does not admit are kept out of it, every message on it
        is judged before it is delivered or forwarded, and peers forwarding rejected ones are penalised and, past a
        threshold, banned: connection closed and refused until the ban ends. Call before or after `start()`."""
        self._guards.add(topic, guard)
        if self._pubsub is not None:
            self._pubsub.set_topic_validator(topic, self._guards.validator(topic), False)

    def _ban(self, peer: str, until: float) -> None:  # refuse until `until`, close now (on the libp2p side)
        self._gate.ban(peer, until)
        nursery, host = self._nursery, self._host
        if nursery is not None and host is not None and not self._stopping:
            nursery.start_soon(close_connections, host.get_network(), ID.from_base58(peer))

    def gossip_status(self) -> dict[str, object]:  # topic validators' verdicts, bans with seconds left
        return self._guards.status(self._gate.banned())

    async def subscribe(self, topic: str) -> Subscription:
        """Subscribe once per topic; iterate the returned object for messages (our own are not delivered)."""
        if topic in self._subscriptions:
            return self._subscriptions[topic]
        sub = Subscription(topic)
        self._subscriptions[topic] = sub
        pubsub, own_id, nursery = self._pubsub, self._host.get_id(), self._nursery

        async def pump(lib_sub: Any) -> None:
            # Drain promptly: the library's own queue drops what does not fit.
            while True:
                try:
                    msg = await lib_sub.get()
                except (trio.EndOfChannel, trio.ClosedResourceError):
                    return
                origin = ID(msg.from_id)
                if origin == own_id:
                    continue
                sub._deliver(GossipMessage(topic=topic, data=bytes(msg.data), origin=str(origin)))

        async def start() -> None:
            lib_sub = await pubsub.subscribe(topic)
            assert nursery is not None
            nursery.start_soon(pump, lib_sub)

        await self._call(start)
        return sub

    @property
    def gossip_heartbeats(self) -> int:
        """Gossipsub heartbeats run since start (one per `GossipLimits.heartbeat_interval_s` when healthy)."""
        return 0 if self._router is None else self._router.heartbeats

    def gossip_peers(self, topic: str) -> list[str]:
        """Peers known to be subscribed to `topic`."""
        if self._pubsub is None:
            return []
        return sorted(str(p) for p in self._pubsub.peer_topics.get(topic, ()))

    # ---- streams and request–response -------------------------------------------------------------------

    def set_stream_handler(self, protocol: str, handler: StreamHandler) -> None:
        """Serve `protocol`: each inbound stream runs `handler` as an asyncio task owned by the host."""

        async def on_stream(raw: Any) -> None:
            peer = str(raw.muxed_conn.peer_id)
            if self._gate.blocks(peer):  # a stream that raced the connection's close
                with contextlib.suppress(Exception):
                    await raw.reset()
                return
            stream = P2PStream(self, raw, peer)
            finished = trio.Event()
            self._spawn_handler(handler(stream), finished.set)
            await finished.wait()

        self._host.set_stream_handler(TProtocol(protocol), on_stream)

    def _spawn_handler(self, coro: Awaitable[None], on_done: Callable[[], None]) -> None:
        async def guarded() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("stream handler failed")
            finally:
                on_done()

        task = asyncio.ensure_future(guarded())
        self._handler_tasks.add(task)
        task.add_done_callback(self._handler_tasks.discard)

    async def open_stream(self, peer_id: str, protocol: str) -> P2PStream:
        if self._gate.blocks(peer_id):
            raise RequestError(f"cannot open {protocol} to {peer_id}: the peer is blocked by this host")
        host = self._host

        async def open_() -> Any:
            try:
                return await open_stream_reconnecting(host, ID.from_base58(peer_id), TProtocol(protocol))
            except Exception as exc:
                if refused_protocol(exc):
                    raise ProtocolRefused(f"{peer_id} does not serve {protocol}") from exc
                raise RequestError(f"cannot open {protocol} to {peer_id}: {type(exc).__name__}: {exc}") from exc

        raw = await self._call(open_)
        return P2PStream(self, raw, peer_id)

    def set_request_handler(
        self,
        protocol: str,
        handler: RequestHandler,
        max_request_bytes: int = 1 << 20,
        on_oversize: Callable[[int], bytes] | None = None,
    ) -> None:
        """Serve a request–response protocol: one length-prefixed request and one answer per stream.

        A request larger than `max_request_bytes` is never buffered. With `on_oversize`, the peer gets that
        function's answer (a typed error of the protocol) while the rest of its request is read and discarded,
        so its write completes and it can read why it was refused; without it, the stream is reset.
        """

        async def serve(stream: P2PStream) -> None:
            await answer_request(stream, protocol, handler, max_request_bytes, on_oversize)

        self.set_stream_handler(protocol, serve)

    async def request(
        self, peer_id: str, protocol: str, payload: bytes, timeout_s: float = 10.0, max_response_bytes: int = 1 << 20
    ) -> bytes:
        """Send one request and wait for its answer."""
        try:
            async with asyncio.timeout(timeout_s):
                stream = await self.open_stream(peer_id, protocol)
                try:
                    await stream.write_frame(payload)
                    await stream.close_write()
                    return await stream.read_frame(max_response_bytes)
                finally:
                    await stream.close()
        except TimeoutError as exc:
            raise RequestError(f"{protocol} request to {peer_id} timed out after {timeout_s} s") from exc
        except StreamClosed as exc:
            raise RequestError(f"{protocol} request to {peer_id} failed: {exc}") from exc
