"""Gossip probe: an operator tool that publishes numbered messages on a test topic and records what arrives.

It lets tests and `bench/gossip.py` measure delivery across real node processes: every probe message carries its
publisher's send time (all processes share the machine's clock) and a per-publisher sequence number, so a
receiver can report latency and loss without any extra coordination.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass

from node.p2p.bridge import P2PHost, Subscription
from node.service import Service
from primitives import codec

log = logging.getLogger(__name__)

PROBE_TOPIC = "/ehrnet/probe/1"
MAX_RECORDS = 100_000


@dataclass(frozen=True)
class ProbeRecord:
    origin: str
    seq: int
    sent_ns: int
    received_ns: int
    size: int


class ProbeError(ValueError):
    """A probe request or message is malformed."""


def encode_probe(seq: int, sent_ns: int, pad: int) -> bytes:
    return codec.encode({"seq": seq, "sent_ns": sent_ns, "pad": bytes(pad)})


def decode_probe(data: bytes) -> tuple[int, int]:
    try:
        value = codec.decode(data)
    except codec.CodecError as exc:
        raise ProbeError(str(exc)) from exc
    if not isinstance(value, dict):
        raise ProbeError("a probe message is a map")
    seq, sent = value.get("seq"), value.get("sent_ns")
    if not isinstance(seq, int) or not isinstance(sent, int):
        raise ProbeError("a probe message has integer seq and sent_ns")
    return seq, sent


class ProbeService(Service):
    name = "probe"

    def __init__(self, host: P2PHost) -> None:
        self._host = host
        self._sub: Subscription | None = None
        self.records: deque[ProbeRecord] = deque(maxlen=MAX_RECORDS)
        self.malformed = 0
        self._seq = 0
        self._burst_lock = asyncio.Lock()

    async def start(self) -> None:
        self._sub = await self._host.subscribe(PROBE_TOPIC)

    async def run(self) -> None:
        assert self._sub is not None
        async for message in self._sub:
            now = time.time_ns()
            try:
                seq, sent = decode_probe(message.data)
            except ProbeError as exc:  # a peer's bad message is counted, never fatal
                self.malformed += 1
                log.info("malformed probe from %s: %s", message.origin, exc)
                continue
            self.records.append(ProbeRecord(message.origin, seq, sent, now, len(message.data)))

    async def publish(self, pad: int = 0) -> int:
        self._seq += 1
        await self._host.publish(PROBE_TOPIC, encode_probe(self._seq, time.time_ns(), pad))
        return self._seq

    async def burst(self, count: int, rate: float, pad: int) -> tuple[int, int, float]:
        """Publish `count` messages paced at `rate` per second; returns (first seq, last seq, seconds taken)."""
        async with self._burst_lock:
            first = self._seq + 1
            start = time.monotonic()
            for i in range(count):
                target = start + i / rate
                delay = target - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await self.publish(pad)
            return first, self._seq, time.monotonic() - start

    def received(self, since_ns: int = 0) -> list[ProbeRecord]:
        return [r for r in self.records if r.received_ns >= since_ns]
