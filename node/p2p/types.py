"""The trio-free half of the libp2p bridge: its errors, settings, messages and the asyncio view of a stream.

Kept apart from `node/p2p/bridge.py` and its helpers (the only modules that import trio) so the bridge itself stays one
concept: running py-libp2p inside asyncio.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from node.p2p.peer_score import ScoreSettings

T = TypeVar("T")

log = logging.getLogger(__name__)


class _Bridge(Protocol):
    """What a stream needs from the host: running one call on the libp2p side."""

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T: ...


class P2PError(Exception):
    """A libp2p operation failed."""


class DialError(P2PError):
    """A peer could not be reached or the secure handshake failed."""


class RequestError(P2PError):
    """A request–response exchange failed (no handler, reset, timeout, or an oversized answer)."""


class ProtocolRefused(RequestError):
    """The peer answered that it does not serve the protocol (multistream-select `na`): a light client, a demo
    host or another implementation, not a fault. Callers remember it (node/p2p/refusal_backoff.py)."""


class StreamClosed(P2PError):
    """The remote side closed or reset the stream."""


@dataclass(frozen=True)
class GossipLimits:
    """Gossipsub settings chosen on purpose rather than inherited (docs/PROTOCOL.md §2).

    The library caps every publisher at 10 msg/s per topic and queues 32 messages per peer and per
    subscription, dropping the rest silently. Callers still batch and pace, and treat gossip as best-effort
    with a request–response repair path.
    """

    max_messages_per_topic_per_second: float = 5000.0
    subscription_queue: int = 8192
    outbound_queue: int = 8192
    degree: int = 6
    degree_low: int = 4
    degree_high: int = 12
    heartbeat_interval_s: int = 1  # kept: adaptive gossip is off (node/p2p/gossip.py)
    max_message_bytes: int = 4 * 1024 * 1024


@dataclass(frozen=True)
class HostConfig:
    seed: bytes
    listen: str = "/ip4/127.0.0.1/tcp/0"
    gossip: GossipLimits = field(default_factory=GossipLimits)
    dial_timeout_s: float = 5.0
    scoring: ScoreSettings = field(default_factory=ScoreSettings)


@dataclass(frozen=True)
class GossipMessage:
    topic: str
    data: bytes
    origin: str  # peer ID of the publisher (signed by it: pubsub strict signing is on)


class Verdict(enum.Enum):
    """A topic validator's judgement of one gossip message (docs/PROTOCOL.md §2, "Validation and scoring")."""

    ACCEPT = "accept"  # delivered here and forwarded
    IGNORE = "ignore"  # dropped, not forwarded, no penalty (an honest member could have sent it: lag, restart)
    REJECT = "reject"  # dropped, not forwarded, and the forwarding peer is penalised


@dataclass(frozen=True)
class TopicGuard:
    """Who may use a gossip topic and what may travel on it.

    `admits(peer_id)`: may this peer subscribe, be grafted into the mesh, and forward or originate messages;
    `judge(message)`: the content check, run before a message is delivered or forwarded (`message.origin` is the
    signed originator; the forwarder has already been admitted). Both run on the libp2p side's thread and must be
    quick and never block; an exception counts as REJECT.
    """

    admits: Callable[[str], bool]
    judge: Callable[[GossipMessage], Verdict]
    # Messages on a single-hop topic are delivered but never forwarded by the router: the application sends each
    # to every peer itself and relays to the peers it knows were missed (node/ledger/gossip/tx_relay.py).
    single_hop: bool = False


RequestHandler = Callable[[str, bytes], Awaitable[bytes]]

# How much of an oversized request a responder reads and drops so the requester can read the refusal.
MAX_DISCARD_BYTES = 64 * 1024 * 1024


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


class P2PStream:
    """An asyncio view of one libp2p stream. Reads are pulled by the consumer, so a slow reader slows the
    writer through yamux's window instead of filling memory."""

    def __init__(self, bridge: _Bridge, raw: Any, peer_id: str) -> None:
        self._bridge = bridge
        self._raw = raw
        self._buffer = bytearray()
        self._eof = False
        self.peer_id = peer_id

    async def read(self, max_bytes: int = 65536) -> bytes:
        """Up to `max_bytes`; b"" at end of stream."""
        if self._buffer:
            chunk = bytes(self._buffer[:max_bytes])
            del self._buffer[:max_bytes]
            return chunk
        if self._eof:
            return b""
        data = await self._bridge._call(functools.partial(_read_some, self._raw, max_bytes))
        if not data:
            self._eof = True
        return data

    async def read_exactly(self, n: int) -> bytes:
        while len(self._buffer) < n:
            if self._eof:
                raise StreamClosed(f"stream ended after {len(self._buffer)} of {n} bytes")
            data = await self._bridge._call(functools.partial(_read_some, self._raw, max(n - len(self._buffer), 4096)))
            if not data:
                self._eof = True
            self._buffer += data
        chunk = bytes(self._buffer[:n])
        del self._buffer[:n]
        return chunk

    async def read_uvarint(self) -> int:
        value, shift = 0, 0
        for _ in range(10):
            byte = (await self.read_exactly(1))[0]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
        raise StreamClosed("varint longer than 10 bytes")

    async def read_frame(self, max_bytes: int) -> bytes:
        """One unsigned-varint length-prefixed frame (the libp2p convention), bounded by `max_bytes`."""
        length = await self.read_uvarint()
        if length > max_bytes:
            raise RequestError(f"frame of {length} bytes exceeds the {max_bytes}-byte limit")
        return await self.read_exactly(length)

    async def write(self, data: bytes) -> None:
        await self._bridge._call(functools.partial(_write, self._raw, data))

    async def write_frame(self, data: bytes) -> None:
        await self.write(_uvarint(len(data)) + data)

    async def close_write(self) -> None:
        with contextlib.suppress(P2PError):
            await self._bridge._call(self._raw.close_write)

    async def close(self) -> None:
        with contextlib.suppress(P2PError):
            await self._bridge._call(self._raw.close)

    async def reset(self) -> None:
        with contextlib.suppress(P2PError):
            await self._bridge._call(self._raw.reset)


async def _read_some(raw: Any, n: int) -> bytes:
    try:
        data: bytes = await raw.read(n)
    except Exception as exc:  # StreamEOF, StreamReset: the library raises several unrelated types
        if type(exc).__name__ in ("StreamEOF", "MuxedStreamEOF"):
            return b""
        raise StreamClosed(f"stream failed: {type(exc).__name__}: {exc}") from exc
    return data


async def _write(raw: Any, data: bytes) -> None:
    try:
        await raw.write(data)
    except Exception as exc:
        raise StreamClosed(f"write failed: {type(exc).__name__}: {exc}") from exc


StreamHandler = Callable[[P2PStream], Awaitable[None]]


class Subscription:
    """Gossip messages of one topic, in arrival order."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self._queue: asyncio.Queue[GossipMessage | None] = asyncio.Queue()

    def __aiter__(self) -> AsyncIterator[GossipMessage]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[GossipMessage]:
        while True:
            message = await self._queue.get()
            if message is None:
                return
            yield message

    def _deliver(self, message: GossipMessage | None) -> None:
        self._queue.put_nowait(message)


async def discard(stream: P2PStream, limit: int) -> None:
    remaining = limit
    while remaining > 0:
        chunk = await stream.read(min(remaining, 256 * 1024))
        if not chunk:
            return
        remaining -= len(chunk)


async def answer_request(
    stream: P2PStream,
    protocol: str,
    handler: RequestHandler,
    max_request_bytes: int,
    on_oversize: Callable[[int], bytes] | None,
) -> None:
    """Serve one request–response exchange on an inbound stream (`P2PHost.set_request_handler` says how)."""
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
