"""Where a light client gets its (untrusted) answers: a full node over libp2p or over HTTP.

Both transports decode to the same typed values (node/light/wire.py). A source reports an unreachable or slow node
as `SourceError`, a node's typed refusal as `RemoteError` and a malformed answer as `WireError`; it never judges
whether an answer is true — the follower does that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from consensus.votes import ValidatorSet
from node.client import AsyncNodeClient, NodeBadAnswer, NodeError, NodeRefused
from node.client.stdlib import ThreadedTransport
from node.light import wire
from node.light.errors import RemoteError, SourceError, WireError

if TYPE_CHECKING:
    from node.p2p.bridge import P2PHost


class Source(Protocol):
    name: str

    async def head(self) -> wire.SignedHeader: ...

    async def headers(self, start: int, end: int) -> list[wire.SignedHeader]: ...

    async def state(self, key: bytes) -> wire.StateAnswer: ...

    async def validators(self, height: int) -> ValidatorSet: ...


class P2PSource:
    """A full node reached over libp2p: dialled on first use; request–response only (a light client never joins
    gossip, votes or stores others' data)."""

    def __init__(self, host: P2PHost, multiaddr: str, timeout_s: float = 10.0) -> None:
        self.host = host
        self.multiaddr = multiaddr
        self.name = multiaddr
        self.timeout_s = timeout_s
        self._peer: str | None = None

    async def _ask(self, request: wire.LightRequest) -> bytes:
        from node.p2p.bridge import P2PError

        try:
            if self._peer is None:
                self._peer = await self.host.dial(self.multiaddr)
            return await self.host.request(
                self._peer,
                wire.LIGHT_PROTOCOL,
                request.encode(),
                timeout_s=self.timeout_s,
                max_response_bytes=wire.MAX_RESPONSE_BYTES,
            )
        except P2PError as exc:
            self._peer = None  # redial next time: the connection may be what failed
            raise SourceError(f"{self.name}: {exc}") from exc

    async def head(self) -> wire.SignedHeader:
        return wire.decode_head(await self._ask(wire.head_request()))

    async def headers(self, start: int, end: int) -> list[wire.SignedHeader]:
        return wire.decode_headers(await self._ask(wire.headers_request(start, end)))

    async def state(self, key: bytes) -> wire.StateAnswer:
        return wire.decode_state(await self._ask(wire.proof_request(key)))

    async def validators(self, height: int) -> ValidatorSet:
        answered, members = wire.decode_validators(await self._ask(wire.validators_request(height)))
        if answered != height:
            raise WireError(f"asked for the validators of height {height}, got {answered}")
        return members


class HttpSource:
    """A full node's HTTP API (`/light/...`), for devices without libp2p. Through the node client's standard-library
    transport in a worker thread (node/client/stdlib.py), so the client stays small: no aiohttp, no libp2p."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.client = AsyncNodeClient(ThreadedTransport(url, timeout_s=timeout_s))
        self.url = self.client.url
        self.name = self.url
        self.timeout_s = timeout_s

    async def _get(self, path: str, query: dict[str, str] | None = None) -> Any:
        # hex doubles the bytes, JSON adds a little
        bound = wire.MAX_RESPONSE_BYTES * 3
        try:
            return await self.client.light(path.removeprefix("/light/"), query or {}, max_bytes=bound)
        except NodeRefused as exc:
            raise RemoteError(exc.code or str(exc.status), exc.message) from exc
        except NodeBadAnswer as exc:
            raise WireError(str(exc)) from exc
        except NodeError as exc:
            raise SourceError(str(exc)) from exc

    async def head(self) -> wire.SignedHeader:
        return wire.signed_header_from_json(await self._get("/light/head"))

    async def headers(self, start: int, end: int) -> list[wire.SignedHeader]:
        req = wire.headers_request(start, end)
        doc = await self._get("/light/headers", {"from": str(req.start), "to": str(req.end)})
        entries = doc.get("headers") if isinstance(doc, dict) else None
        if not isinstance(entries, list) or len(entries) > wire.MAX_HEADERS:
            raise WireError(f'{self.url}/light/headers: expected "headers", a list of at most {wire.MAX_HEADERS}')
        return [wire.signed_header_from_json(e) for e in entries]

    async def state(self, key: bytes) -> wire.StateAnswer:
        wire.proof_request(key)
        return wire.state_from_json(await self._get("/light/proof", {"key": key.hex()}))

    async def validators(self, height: int) -> ValidatorSet:
        doc = await self._get("/light/validators", {"height": str(height)})
        if not isinstance(doc, dict) or doc.get("height") != height or not isinstance(doc.get("validators"), list):
            raise WireError(f"{self.url}/light/validators: expected the set of height {height}")
        try:
            return ValidatorSet(tuple(bytes.fromhex(k) for k in doc["validators"]))
        except (ValueError, TypeError) as exc:
            raise WireError(f"{self.url}/light/validators: {exc}") from exc
