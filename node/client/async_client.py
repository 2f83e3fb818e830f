"""`AsyncNodeClient`: the asyncio twin of `NodeClient` (node/client/client.py), method for method, for callers
that run an event loop: the chaos runner, the demo, the EHR sharing client, async tests and benchmarks. Over
`AiohttpTransport` (node/client/aio.py) where the process runs aiohttp anyway, over `ThreadedTransport`
(node/client/stdlib.py) where it must not load aiohttp (the light client).

Requests are built in node/client/routes.py and judged in node/client/request.py; the transport only moves bytes.
Every failure is a `NodeError` (node/client/errors.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from node.client import routes
from node.client.errors import NodeError
from node.client.finality import FinalityWait
from node.client.request import DEFAULT_TIMEOUT_S, MAX_ANSWER_BYTES, Answer, Body, Request, Sink, decode, document

Doc = dict[str, Any]


class Transport(Protocol):
    base_url: str

    async def send(self, request: Request, sink: Sink | None = None) -> Answer: ...

    async def close(self) -> None: ...

    def at(self, base_url: str) -> Transport: ...


class AsyncNodeClient:
    """One node's API over an async transport (`AsyncNodeClient.connect` opens an aiohttp one; `close` it)."""

    def __init__(self, transport: Transport, clock: Callable[[], float] = time.monotonic) -> None:
        self.transport = transport
        self.clock = clock

    @classmethod
    def connect(cls, url: str, token: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> AsyncNodeClient:
        from node.client.aio import AiohttpTransport

        return cls(AiohttpTransport(url, token, timeout_s))

    async def close(self) -> None:
        await self.transport.close()

    def at(self, url: str) -> AsyncNodeClient:
        """A client of another node over the same kind of transport (and, for aiohttp, the same pool): e.g. the
        EHRs manager's node beside the user's own."""
        return AsyncNodeClient(self.transport.at(url), self.clock)

    async def __aenter__(self) -> AsyncNodeClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def url(self) -> str:
        return self.transport.base_url

    async def call(self, request: Request) -> Any:
        """Send a request; its JSON answer, or the NodeError it stands for."""
        return decode(self.url + request.path, await self.transport.send(request))

    async def doc(self, request: Request) -> Doc:
        return document(self.url + request.path, await self.call(request))

    async def download(self, request: Request, sink: Sink) -> None:
        """Stream a 2xx answer's body into `sink` chunk by chunk (it may have written part of it on an error)."""
        decode(self.url + request.path, await self.transport.send(request, sink))

    # ---- node ------------------------------------------------------------------------------------------------

    async def status(self, timeout_s: float | None = None) -> Doc:
        return await self.doc(Request("GET", "/status", timeout_s=timeout_s))

    async def chain_id(self) -> str:
        return str((await self.status())["chain_id"])

    # ---- ledger ----------------------------------------------------------------------------------------------

    async def submit(self, raw_tx: bytes) -> str:
        """Submit one signed transaction; its hash once the node acknowledged it."""
        return str((await self.doc(routes.submit([raw_tx])))["hash"])

    async def submit_batch(self, raw_txs: list[bytes]) -> Doc:
        return await self.doc(routes.submit(raw_txs))

    async def tx(self, tx_hash: str) -> Doc:
        return await self.doc(routes.tx(tx_hash))

    async def wait_final(self, tx_hash: str, timeout_s: float = 30.0) -> Doc:
        """`GET /tx/{hash}` once the transaction is final (its height, index and receipt); NodeTimeout if it is
        not within `timeout_s`. Long-polls a node that supports it, polls one that does not."""
        wait = FinalityWait(self.url, tx_hash, timeout_s, self.clock())
        while True:
            request, asked_s = wait.ask(self.clock())
            started = self.clock()
            try:
                final, pause = wait.answered(await self.call(request), asked_s, self.clock() - started, self.clock())
            except NodeError as exc:
                final, pause = None, wait.failed(exc, asked_s, self.clock() - started, self.clock())
            if final is not None:
                return final
            import asyncio  # here, not at the top: importing the package stays free of asyncio (CLI start-up)

            await asyncio.sleep(pause)

    async def block(self, height: int | str = "latest") -> Doc:
        return await self.doc(routes.block(height))

    async def account(self, address: str) -> Doc:
        return await self.doc(routes.account(address))

    async def next_nonce(self, address: str) -> int:
        return int((await self.account(address))["next_nonce"])

    # ---- contracts -------------------------------------------------------------------------------------------

    async def deploy(self, raw_tx: bytes) -> Doc:
        return await self.doc(routes.deploy(raw_tx))

    async def abi(self, target: str) -> Doc:
        return await self.doc(routes.abi(target))

    async def view(
        self, target: str, function: str, args: list[Any], caller: str | None = None, gas_limit: int | None = None
    ) -> Doc:
        return await self.doc(routes.view(target, function, args, caller, gas_limit))

    async def receipt(self, tx_hash: str) -> Doc:
        return await self.doc(routes.receipt(tx_hash))

    async def events(self, query: dict[str, str], page: int = 1000) -> list[Doc]:
        """Every event matching `query`, oldest first (`GET /events` answers newest first, a page at a time)."""
        newest_first: list[Doc] = []
        cursor: dict[str, str] = {}
        while True:
            found = await self.doc(routes.events({**query, "limit": str(page), **cursor}))
            newest_first += found.get("events", [])
            before = found.get("next_before")
            if found.get("complete", True) or not isinstance(before, str):
                return newest_first[::-1]
            cursor = {"before": before}

    async def state_proof(self, contract: str, key: str) -> Doc:
        return await self.doc(routes.state_proof(contract, key))

    async def light(self, path: str, query: dict[str, str], max_bytes: int = MAX_ANSWER_BYTES) -> Any:
        return await self.call(routes.light(path, query, max_bytes))

    # ---- storage ---------------------------------------------------------------------------------------------

    async def add(self, body: Body, pin: bool = True, replication: int | None = None) -> Doc:
        """Store bytes (or stream an iterable of chunks); `{"cid", "holders", "replication", ...}`."""
        return await self.doc(routes.add_object(body, pin, replication))

    async def cat(self, cid: str, sink: Sink, car: bool = False) -> None:
        await self.download(routes.get_object(cid, car), sink)

    async def cat_bytes(self, cid: str) -> bytes:
        parts: list[bytes] = []
        await self.cat(cid, parts.append)
        return b"".join(parts)

    async def dag_import(self, body: Body, replication: int | None = None) -> Doc:
        return await self.doc(routes.dag_import(body, replication))

    async def providers(self, cid: str) -> list[Doc]:
        return list((await self.doc(routes.providers(cid))).get("providers", []))

    async def pins(self) -> list[Doc]:
        return list((await self.doc(routes.pins()))["pins"])

    async def pin(self, cid: str, replication: int | None = None) -> Doc:
        return await self.doc(routes.pin(cid, replication))

    async def unpin(self, cid: str) -> Doc:
        return await self.doc(routes.unpin(cid))

    async def gc(self) -> Doc:
        return await self.doc(routes.gc())

    # ---- roles -----------------------------------------------------------------------------------------------

    async def ehr_request(self, request_hex: str) -> Doc:
        return await self.doc(routes.ehr_request(request_hex))

    async def offload_info(self) -> Doc:
        return await self.doc(routes.offload_info())

    async def offload(self, request_hex: str) -> Doc:
        return await self.doc(routes.offload(request_hex))

    # ---- operator --------------------------------------------------------------------------------------------

    async def shutdown(self) -> Doc:
        return await self.doc(routes.shutdown())

    async def probe_publish(self, count: int, rate: float, pad: int = 0) -> Doc:
        return await self.doc(routes.probe_publish(count, rate, pad))

    async def probe_received(self, since_ns: int = 0) -> Doc:
        return await self.doc(routes.probe_received(since_ns))

    async def faults(self) -> Doc:
        return await self.doc(routes.faults())

    async def gate(self, blocked_peers: list[str]) -> Doc:
        return await self.doc(routes.gate(blocked_peers))

    async def disconnect(self, peer: str) -> Doc:
        return await self.doc(routes.disconnect(peer))

    async def arm(self, point: str, min_height: int = 0) -> Doc:
        return await self.doc(routes.arm(point, min_height))
