"""The edge role: serve encrypted offloading (paper Sec. III-A) on libp2p and on HTTP.

Both paths carry the same sealed envelope (docs/OFFLOAD.md) to the same pure `EdgeExecutor`, which answers every
request with a result sealed for the device or a typed error. Analyses are CPU-bound, so they run in a worker
thread and the node keeps serving its peers meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from aiohttp import web

from node.api.server import json_error, read_json
from node.p2p.bridge import P2PHost
from node.service import Service
from offload import sealed_messages
from offload.edge import EdgeExecutor
from offload.errors import OversizeError
from offload.sink import ResultSink

log = logging.getLogger(__name__)

OFFLOAD_PROTOCOL = "/ehrnet/offload/1.0.0"
# Analyses are CPU-bound and the machine small: one at a time keeps the node responsive to its peers.
MAX_CONCURRENT_TASKS = 1
# HTTP status for each typed offload error (docs/OFFLOAD.md, "Messages").
ERROR_STATUS = {
    "too-large": 413,
    "malformed": 400,
    "unsupported-version": 400,
    "decrypt-failed": 400,
    "unknown-task": 404,
    "bad-input": 422,
    "task-failed": 422,
}


class EdgeService(Service):
    name = "edge"

    def __init__(self, host: P2PHost, executor: EdgeExecutor, max_request_bytes: int) -> None:
        self._host = host
        self.executor = executor
        self.max_request_bytes = max_request_bytes
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_TASKS)
        self.served = 0
        self.refused = 0

    async def start(self) -> None:
        self._host.set_request_handler(
            OFFLOAD_PROTOCOL, self._serve_p2p, self.max_request_bytes, on_oversize=self._oversize_answer
        )

    async def run(self) -> None:
        # Load the analysis libraries (heartpy, scipy: seconds of imports) before the first device waits for them.
        # A daemon thread, not the loop's executor: asyncio.run joins executor threads at exit, so a node asked
        # to stop while a cold import is under way would linger for its whole duration.
        threading.Thread(target=_warm_up, name="edge-warm-up", daemon=True).start()

    def _oversize_answer(self, length: int) -> bytes:
        self.refused += 1
        return sealed_messages.error_response(
            OversizeError(f"request of {length} bytes exceeds this edge node's limit of {self.max_request_bytes}")
        )

    async def run_request(self, request: bytes) -> bytes:
        async with self._slots:
            answer = await asyncio.to_thread(self.executor.handle, request)
        self.served += 1
        return answer

    async def _serve_p2p(self, peer: str, request: bytes) -> bytes:
        log.debug("offload request from %s (%d bytes)", peer, len(request))
        return await self.run_request(request)

    def info(self) -> dict[str, object]:
        return {
            "protocol": OFFLOAD_PROTOCOL,
            "box_public_key": self.executor.public_key.hex(),
            "tasks": self.executor.task_names,
            "max_request_bytes": self.max_request_bytes,
            "served": self.served,
        }

    def routes(self) -> list[web.RouteDef]:
        async def info(_: web.Request) -> web.Response:
            return web.json_response(self.info())

        async def offload(request: web.Request) -> web.Response:
            # The sealed envelope travels hex-encoded in JSON; the limit counts the decoded bytes.
            body = await read_json(request, max_bytes=2 * self.max_request_bytes + 1024)
            wire_hex = body.get("request") if isinstance(body, dict) else None
            if not isinstance(wire_hex, str):
                return json_error(400, 'request: the sealed offload request as a hex string, {"request": "..."}')
            try:
                wire = bytes.fromhex(wire_hex)
            except ValueError:
                return json_error(400, "request: not a hex string")
            if len(wire) > self.max_request_bytes:
                self.refused += 1
                return json_error(413, f"request of {len(wire)} bytes exceeds the limit of {self.max_request_bytes}")
            answer = await self.run_request(wire)
            outer = sealed_messages.decode_response(answer, max_bytes=len(answer))
            if outer.get("kind") == "error":
                # The envelope is the authority (the device may check its id); the status mirrors its code.
                code = str(outer.get("code"))
                return web.json_response(
                    {"error": str(outer.get("message")), "code": code, "response": answer.hex()},
                    status=ERROR_STATUS.get(code, 400),
                )
            return web.json_response({"response": answer.hex()})

        return [web.get("/offload/info", info), web.post("/offload", offload)]


def _warm_up() -> None:
    # Everything the first heart-rate or tremor task needs (heartpy, scipy.signal): without it the first device
    # paid ~2.7 s for imports inside its request.
    from offload.tasks import preload

    preload()


def build_edge_service(host: P2PHost, identity_seed: bytes, sink: ResultSink | None = None) -> EdgeService:
    from primitives.keys import SigningKey

    executor = EdgeExecutor(sealed_messages.box_key_from_identity(SigningKey(identity_seed)), sink=sink)
    return EdgeService(host, executor, sealed_messages.DEFAULT_MAX_REQUEST_BYTES)
