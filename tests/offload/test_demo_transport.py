"""The demo's libp2p transport turns a failed request into the session's TransportError (so the phone falls back
to running the task itself instead of the demo dying with a traceback)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from node.demo.run import P2PTransport
from node.p2p.types import RequestError
from offload.errors import TransportError


class BrokenHost:
    async def request(self, peer: str, protocol: str, data: bytes, timeout_s: float) -> bytes:
        raise RequestError(f"{protocol} request to {peer} failed: stream ended after 0 of 1 bytes")


class EchoHost:
    async def request(self, peer: str, protocol: str, data: bytes, timeout_s: float) -> bytes:
        return data[::-1]


def transport(host: Any) -> P2PTransport:
    return P2PTransport(host, "12D3KooWedgeedgeedge")


def test_a_failed_request_is_a_transport_error() -> None:
    with pytest.raises(TransportError, match="unreachable"):
        asyncio.run(transport(BrokenHost()).offload(b"sealed"))


def test_an_answer_passes_through() -> None:
    assert asyncio.run(transport(EchoHost()).offload(b"abc")) == b"cba"
