"""The node's HTTP API (aiohttp, bound to 127.0.0.1 by default). Documented in docs/API.md.

JSON in and out; binary values as lowercase hex. Errors are JSON `{"error": "..."}` with a 4xx status naming
the problem. Operator-only endpoints require `Authorization: Bearer <token>`, the token the node writes to
`<node-dir>/api.token`; everything else that changes state is a signed transaction (later issues).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from node.service import Service

log = logging.getLogger(__name__)

LINGER_S = 1.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class OperatorAuth:
    """Checks the operator bearer token (constant-time)."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    @staticmethod
    def load_or_create(path: Path) -> OperatorAuth:
        if path.exists():
            return OperatorAuth(path.read_text().strip())
        token = secrets.token_hex(32)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        return OperatorAuth(token)

    def require(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented:
            raise web.HTTPUnauthorized(
                text=json.dumps({"error": "operator token required (Authorization: Bearer <token>)"}),
                content_type="application/json",
            )
        if not hmac.compare_digest(presented.strip().encode(), self._token):
            raise web.HTTPForbidden(text=json.dumps({"error": "wrong operator token"}), content_type="application/json")


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as JSON; an unexpected exception is logged and answered 500, never a crash."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json" or exc.status < 400:
            raise
        return json_error(exc.status, exc.reason if not exc.text or exc.text.startswith(str(exc.status)) else exc.text)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("unhandled error serving %s %s", request.method, request.path)
        return json_error(500, f"internal error: {type(exc).__name__}")


async def read_json(request: web.Request, max_bytes: int = 1 << 20) -> Any:
    """The request body as JSON, or a 400/413 naming what is wrong."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise web.HTTPRequestEntityTooLarge(max_size=max_bytes, actual_size=request.content_length)
    buffer = bytearray()
    try:
        # One read() may return only part of the body: keep reading until it ends or passes the limit.
        while len(buffer) <= max_bytes:
            chunk = await request.content.read(max_bytes + 1 - len(buffer))
            if not chunk:
                break
            buffer += chunk
    except Exception as exc:
        raise web.HTTPBadRequest(reason=f"cannot read body: {exc}") from exc
    raw = bytes(buffer)
    if len(raw) > max_bytes:
        raise web.HTTPRequestEntityTooLarge(max_size=max_bytes, actual_size=len(raw))
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise web.HTTPBadRequest(reason=f"body is not JSON: {exc}") from exc


class HttpApiService(Service):
    """Serves the routes the node's subsystems registered."""

    name = "http"

    def __init__(self, host: str, port: int) -> None:
        self.app = web.Application(middlewares=[json_errors], client_max_size=64 * 1024 * 1024)
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None
        self.url = ""

    def add_routes(self, routes: list[web.RouteDef]) -> None:
        self.app.add_routes(routes)

    async def start(self) -> None:
        # lingering_time: after answering a request whose body it did not read (a refusal before the body
        # mattered), aiohttp keeps reading that body for up to 10 s by default, and a stopping node waits for it.
        # One second is ample for a client on this host or LAN and keeps `stop` prompt.
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False, lingering_time=LINGER_S)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, reuse_address=True)
        await site.start()
        port = self._port
        server = site._server
        if server is not None and port == 0:
            sockets = getattr(server, "sockets", None) or []
            if sockets:
                port = sockets[0].getsockname()[1]
        self.url = f"http://{self._host}:{port}"
        log.info("HTTP API on %s", self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
