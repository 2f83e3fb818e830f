"""`NodeClient`: the typed, blocking client of a node's HTTP API (docs/API.md, "Clients") — what the CLI, the
cluster tools and the test harness use. `AsyncNodeClient` (node/client/async_client.py) is its asyncio twin.

Requests are built in node/client/routes.py and judged in node/client/request.py; the transport only moves bytes.
Every failure is a `NodeError` (node/client/errors.py).
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable
from typing import Any, Protocol

from node.client import routes
from node.client.errors import NodeError
from node.client.finality import FinalityWait
from node.client.request import (
    DEFAULT_TIMEOUT_S,
    MAX_ANSWER_BYTES,
    Answer,
    Body,
    Request,
    Sink,
    decode,
    document,
    send_json,
)

Doc = dict[str, Any]


class Transport(Protocol):
    base_url: str

    def send(self, request: Request, sink: Sink | None = None) -> Answer: ...


class NodeClient:
    """One node's API over a blocking transport (by default the standard library's: `NodeClient.connect`)."""

    def __init__(self, transport: Transport, clock: Callable[[], float] = time.monotonic) -> None:
        self.transport = transport
        self.clock = clock

    @classmethod
    def connect(cls, url: str, token: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> NodeClient:
        from node.client.stdlib import StdlibTransport

        return cls(StdlibTransport(url, token, timeout_s))

    @property
    def url(self) -> str:
        return self.transport.base_url

    def call(self, request: Request) -> Any:
        """Send a request; its JSON answer, or the NodeError it stands for."""
        return decode(self.url + request.path, self.transport.send(request))

    def doc(self, request: Request) -> Doc:
        return document(self.url + request.path, self.call(request))

    def download(self, request: Request, sink: Sink) -> None:
        """Stream a 2xx answer's body into `sink` chunk by chunk (it may have written part of it on an error)."""
        decode(self.url + request.path, self.transport.send(request, sink))

    # ---- node ------------------------------------------------------------------------------------------------

    def status(self, timeout_s: float | None = None) -> Doc:
        return self.doc(Request("GET", "/status", timeout_s=timeout_s))

    def chain_id(self) -> str:
        return str(self.status()["chain_id"])

    # ---- ledger ----------------------------------------------------------------------------------------------

    def submit(self, raw_tx: bytes) -> str:
        """Submit one signed transaction; its hash once the node acknowledged it."""
        return str(self.doc(routes.submit([raw_tx]))["hash"])

    def submit_batch(self, raw_txs: list[bytes]) -> Doc:
        return self.doc(routes.submit(raw_txs))

    def tx(self, tx_hash: str) -> Doc:
        return self.doc(routes.tx(tx_hash))

    def wait_final(self, tx_hash: str, timeout_s: float = 30.0) -> Doc:
        """`GET /tx/{hash}` once the transaction is final (its height, index and receipt); NodeTimeout if it is
        not within `timeout_s`. Long-polls a node that supports it, polls one that does not."""
        wait = FinalityWait(self.url, tx_hash, timeout_s, self.clock())
        while True:
            request, asked_s = wait.ask(self.clock())
            started = self.clock()
            try:
                final, pause = wait.answered(self.call(request), asked_s, self.clock() - started, self.clock())
            except NodeError as exc:
                final, pause = None, wait.failed(exc, asked_s, self.clock() - started, self.clock())
            if final is not None:
                return final
            time.sleep(pause)

    def block(self, height: int | str = "latest") -> Doc:
        return self.doc(routes.block(height))

    def account(self, address: str) -> Doc:
        return self.doc(routes.account(address))

    def next_nonce(self, address: str) -> int:
        return int(self.account(address)["next_nonce"])

    # ---- contracts -------------------------------------------------------------------------------------------

    def deploy(self, raw_tx: bytes) -> Doc:
        return self.doc(routes.deploy(raw_tx))

    def abi(self, target: str) -> Doc:
        return self.doc(routes.abi(target))

    def view(
        self, target: str, function: str, args: list[Any], caller: str | None = None, gas_limit: int | None = None
    ) -> Doc:
        return self.doc(routes.view(target, function, args, caller, gas_limit))

    def receipt(self, tx_hash: str) -> Doc:
        return self.doc(routes.receipt(tx_hash))

    def events(self, query: dict[str, str], page: int = 1000) -> list[Doc]:
        """Every event matching `query`, oldest first (`GET /events` answers newest first, a page at a time)."""
        newest_first: list[Doc] = []
        cursor: dict[str, str] = {}
        while True:
            found = self.doc(routes.events({**query, "limit": str(page), **cursor}))
            newest_first += found.get("events", [])
            before = found.get("next_before")
            if found.get("complete", True) or not isinstance(before, str):
                return newest_first[::-1]
            cursor = {"before": before}

    def state_proof(self, contract: str, key: str) -> Doc:
        return self.doc(routes.state_proof(contract, key))

    def light(self, path: str, query: dict[str, str], max_bytes: int = MAX_ANSWER_BYTES) -> Any:
        return self.call(routes.light(path, query, max_bytes))

    # ---- storage ---------------------------------------------------------------------------------------------

    def add(self, body: Body, pin: bool = True, replication: int | None = None) -> Doc:
        """Store bytes (or stream an iterable of chunks); `{"cid", "holders", "replication", ...}`."""
        return self.doc(routes.add_object(body, pin, replication))

    def cat(self, cid: str, sink: Sink, car: bool = False) -> None:
        self.download(routes.get_object(cid, car), sink)

    def cat_bytes(self, cid: str) -> bytes:
        parts: list[bytes] = []
        self.cat(cid, parts.append)
        return b"".join(parts)

    def dag_import(self, body: Body, replication: int | None = None) -> Doc:
        return self.doc(routes.dag_import(body, replication))

    def providers(self, cid: str) -> list[Doc]:
        return list(self.doc(routes.providers(cid)).get("providers", []))

    def pins(self) -> list[Doc]:
        return list(self.doc(routes.pins())["pins"])

    def pin(self, cid: str, replication: int | None = None) -> Doc:
        return self.doc(routes.pin(cid, replication))

    def unpin(self, cid: str) -> Doc:
        return self.doc(routes.unpin(cid))

    def gc(self) -> Doc:
        return self.doc(routes.gc())

    # ---- roles -----------------------------------------------------------------------------------------------

    def ehr_request(self, request_hex: str) -> Doc:
        return self.doc(routes.ehr_request(request_hex))

    def offload_info(self) -> Doc:
        return self.doc(routes.offload_info())

    def offload(self, request_hex: str) -> Doc:
        return self.doc(routes.offload(request_hex))

    # ---- operator --------------------------------------------------------------------------------------------

    def shutdown(self) -> Doc:
        return self.doc(routes.shutdown())

    def probe_publish(self, count: int, rate: float, pad: int = 0) -> Doc:
        return self.doc(routes.probe_publish(count, rate, pad))

    def probe_received(self, since_ns: int = 0) -> Doc:
        return self.doc(routes.probe_received(since_ns))

    def faults(self) -> Doc:
        return self.doc(routes.faults())

    def gate(self, blocked_peers: list[str]) -> Doc:
        return self.doc(routes.gate(blocked_peers))

    def disconnect(self, peer: str) -> Doc:
        return self.doc(routes.disconnect(peer))

    def arm(self, point: str, min_height: int = 0) -> Doc:
        return self.doc(routes.arm(point, min_height))


def call_url(
    method: str, url: str, body: Any = None, token: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
) -> Any:
    """One JSON request to a full URL (a node's base URL, path and query as one string), for code that holds URLs
    rather than a client: the test harness's `http_json`. The token, when given, is sent."""
    parts = urllib.parse.urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    operator = token is not None
    if body is None:
        request = Request(method, target, operator=operator)
    else:
        request = send_json(method, target, body, operator=operator)
    return NodeClient.connect(f"{parts.scheme}://{parts.netloc}", token, timeout_s).call(request)
