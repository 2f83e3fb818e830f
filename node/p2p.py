"""The asyncio bridge to py-libp2p: the only module in ehrnet that imports trio.

py-libp2p 0.8.1 runs only on trio (ARCHITECTURE.md §1), while ehrnet is an asyncio program. We run trio in
*guest mode* on the asyncio loop (`trio.lowlevel.start_guest_run`): both runtimes share one thread, trio's
task steps run as asyncio callbacks and only its I/O wait sits in a helper thread. Crossing is cheap (~0.1 ms)
and needs no locks, because nothing runs concurrently with anything else.

Crossings:
- asyncio → trio: `TrioToken.run_sync_soon` schedules a trio task in the bridge's nursery; its result is put
  into an asyncio future. Cancelling the asyncio caller cancels the trio task.
- trio → asyncio: trio tasks call asyncio objects directly (same thread): gossip messages go into an asyncio
  queue per subscription; inbound requests and streams run their asyncio handlers as tasks the bridge owns.

The host is configured against the defaults that bite (ARCHITECTURE.md §1): Noise is the only security
transport (a plaintext dial is refused), yamux the only muxer, one connection per peer, gossipsub's per-topic
spam cap and queues raised deliberately, and the pubsub seqno seeded from `time.time_ns()` so a restarted node's
messages are not dropped as duplicates of its previous life.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

import multiaddr
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.network.config import ConnectionConfig
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub import pubsub as pubsub_module
from libp2p.pubsub import rpc_queue
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11, GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.tools.anyio_service import background_trio_service

# The trio-free parts live in node/p2p_types.py; they are re-exported here so callers import one module.
from node.p2p_types import (
    MAX_DISCARD_BYTES,
    DialError,
    GossipLimits,
    GossipMessage,
    HostConfig,
    P2PError,
    P2PStream,
    RequestError,
    RequestHandler,
    StreamClosed,
    StreamHandler,
    Subscription,
    discard,
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
    "RequestError",
    "RequestHandler",
    "StreamClosed",
    "StreamHandler",
    "Subscription",
    "peer_id_from_seed",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


class _GuardedPubsub(Pubsub):
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


def peer_id_from_seed(seed: bytes) -> str:
    """The libp2p peer ID (base58 multihash of the Ed25519 public key) that a seed gives."""
    return str(ID.from_pubkey(create_new_key_pair(seed).public_key))


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
        self._stop_event: trio.Event | None = None
        self._runtime: _TrioRuntime | None = None
        self._done: asyncio.Future[None] | None = None
        self._ready: asyncio.Future[None] | None = None
        self._subscriptions: dict[str, Subscription] = {}
        self._handler_tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.listen_addrs: list[str] = []

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
        _raise_library_limits(self._config.gossip)
        self._runtime = await _TrioRuntime.acquire()
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
        router = GossipSub(
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
        pubsub = _GuardedPubsub(host, router, max_inbound_rpc_size=limits.max_message_bytes)
        # Seqnos seeded from nanoseconds: with the library's seconds-based seed a restarted node reuses the
        # seqnos of its last life and its messages are dropped as seen for 5–8 s (ARCHITECTURE.md §1).
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
        future: asyncio.Future[T] = loop.create_future()
        scopes: list[trio.CancelScope] = []

        async def runner() -> None:
            with trio.CancelScope() as scope:
                scopes.append(scope)
                try:
                    result = await fn()
                except P2PError as exc:
                    if not future.done():
                        future.set_exception(exc)
                    return
                except Exception as exc:
                    if not future.done():
                        future.set_exception(P2PError(f"{type(exc).__name__}: {exc}"))
                    return
                if not future.done():
                    future.set_result(result)
            if not future.done():
                future.set_exception(P2PError("cancelled"))

        def spawn() -> None:
            try:
                nursery.start_soon(runner)
            except RuntimeError as exc:  # nursery closed: the host is shutting down
                if not future.done():
                    future.set_exception(P2PError(f"the libp2p host is shutting down ({exc})"))

        try:
            token.run_sync_soon(spawn)
        except trio.RunFinishedError as exc:
            raise P2PError("the libp2p host has stopped") from exc
        try:
            return await future
        except asyncio.CancelledError:
            if scopes:
                with contextlib.suppress(trio.RunFinishedError):
                    token.run_sync_soon(scopes[0].cancel)
            raise

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
        host, timeout = self._host, self._config.dial_timeout_s

        async def connect() -> str:
            try:
                with trio.fail_after(timeout):
                    await host.connect(info)
            except trio.TooSlowError as exc:
                raise DialError(f"dialing {addr} timed out after {timeout} s") from exc
            except Exception as exc:
                raise DialError(f"dialing {addr} failed: {type(exc).__name__}: {exc}") from exc
            return str(info.peer_id)

        return await self._call(connect)

    async def disconnect(self, peer_id: str) -> None:
        host = self._host

        async def close() -> None:
            with contextlib.suppress(Exception):
                await host.disconnect(ID.from_base58(peer_id))

        await self._call(close)

    # ---- gossip ---------------------------------------------------------------------------------------

    async def publish(self, topic: str, data: bytes) -> None:
        pubsub = self._pubsub
        if len(data) > self._config.gossip.max_message_bytes:
            raise P2PError(f"gossip message of {len(data)} bytes exceeds the configured limit")
        await self._call(functools.partial(pubsub.publish, topic, data))

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
        host = self._host

        async def open_() -> Any:
            try:
                return await host.new_stream(ID.from_base58(peer_id), [TProtocol(protocol)])
            except Exception as exc:
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
            try:
                length = await stream.read_uvarint()
                if length > max_request_bytes:
                    log.info("%s request of %d bytes from %s refused", protocol, length, stream.peer_id)
                    if on_oversize is None:
                        await stream.reset()
                        return
                    await stream.write_frame(on_oversize(length))
                    await discard(stream, min(length, MAX_DISCARD_BYTES))
                    await stream.close()
                    return
                request = await stream.read_exactly(length)
            except P2PError as exc:
                log.info("bad %s request from %s: %s", protocol, stream.peer_id, exc)
                await stream.reset()
                return
            try:
                answer = await handler(stream.peer_id, request)
                await stream.write_frame(answer)
            except P2PError as exc:
                log.info("%s answer to %s failed: %s", protocol, stream.peer_id, exc)
            finally:
                await stream.close()

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


class _TrioRuntime:
    """One trio guest run per asyncio loop, shared by every host on it (trio allows one run per thread)."""

    _by_loop: ClassVar[dict[asyncio.AbstractEventLoop, _TrioRuntime]] = {}

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._users = 0
        self._ready: asyncio.Future[None] = loop.create_future()
        self._done: asyncio.Future[None] = loop.create_future()
        self._stop: trio.Event | None = None
        self._nursery: trio.Nursery | None = None
        self.token: trio.lowlevel.TrioToken | None = None

    @classmethod
    async def acquire(cls) -> _TrioRuntime:
        loop = asyncio.get_running_loop()
        runtime = cls._by_loop.get(loop)
        if runtime is None:
            runtime = cls(loop)
            cls._by_loop[loop] = runtime
            runtime._start()
        runtime._users += 1
        await runtime._ready
        return runtime

    def _start(self) -> None:
        def done_callback(outcome: Any) -> None:
            self._by_loop.pop(self._loop, None)
            try:
                outcome.unwrap()
            except BaseException as exc:  # surface how the trio run ended; never lose it
                for fut in (self._ready, self._done):
                    if not fut.done():
                        fut.set_exception(P2PError(f"the trio runtime failed: {exc!r}"))
                return
            for fut in (self._ready, self._done):
                if not fut.done():
                    fut.set_result(None)

        trio.lowlevel.start_guest_run(
            self._main,
            run_sync_soon_threadsafe=self._schedule_threadsafe,
            run_sync_soon_not_threadsafe=self._schedule,
            done_callback=done_callback,
            host_uses_signal_set_wakeup_fd=True,
            restrict_keyboard_interrupt_to_checkpoints=True,
        )

    def _schedule_threadsafe(self, fn: Callable[[], None]) -> None:
        self._loop.call_soon_threadsafe(fn)

    def _schedule(self, fn: Callable[[], None]) -> None:
        self._loop.call_soon(fn)

    async def _main(self) -> None:
        self._stop = trio.Event()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self.token = trio.lowlevel.current_trio_token()
            self._ready.set_result(None)
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    def spawn(self, fn: Callable[[], Awaitable[None]]) -> None:
        nursery, token = self._nursery, self.token
        assert nursery is not None and token is not None
        token.run_sync_soon(nursery.start_soon, fn)

    async def release(self) -> None:
        self._users -= 1
        if self._users > 0:
            return
        if self.token is not None and self._stop is not None:
            with contextlib.suppress(trio.RunFinishedError):
                self.token.run_sync_soon(self._stop.set)
        try:
            await asyncio.wait_for(asyncio.shield(self._done), timeout=10)
        except Exception as exc:
            log.warning("trio runtime shutdown: %s", exc)


def _raise_library_limits(limits: GossipLimits) -> None:
    """Replace the library's fixed 32-slot queues (module constants read at subscribe/connect time)."""
    pubsub_module.SUBSCRIPTION_CHANNEL_SIZE = limits.subscription_queue
    setattr(pubsub_module, "RpcQueue", functools.partial(rpc_queue.RpcQueue, max_size=limits.outbound_queue))  # noqa: B010
