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
from aiohttp.http_exceptions import HttpProcessingError

from node.service import Service

log = logging.getLogger(__name__)

LINGER_S = 1.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# Set when the HTTP service begins to stop. aiohttp's shutdown waits up to a minute for requests in flight, so a
# long-poll (node/api/ledger.py) ends on this at once rather than holding up the node's stop.
STOPPING = web.AppKey("stopping", asyncio.Event)


async def _stopping(app: web.Application) -> None:
    app[STOPPING].set()


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

    def presented(self, request: web.Request) -> bool:
        """Whether the request carries the right token (for accounting; `require` is the access check)."""
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), self._token)

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


MAX_JSON_DEPTH = 32  # deeper than any body the API takes (a contract value nests at most a few levels more)
SMALL_BODY = 4096  # the bound for bodies of a few fields (operator commands)


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """Whether `value` (parsed JSON) nests arrays/objects deeper than `limit`; iterative, so any depth is safe."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


async def read_json(request: web.Request, max_bytes: int = 1 << 20, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The request body as JSON, or a 400/413 naming what is wrong.

    The size is checked against the endpoint's own maximum before anything is read (a declared Content-Length)
    and while reading (a chunked body stops at the bound), so an oversized body never reaches memory; the nesting
    is bounded because a deep document makes every recursive consumer (`json`, DAG-JSON) overflow the stack."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise web.HTTPRequestEntityTooLarge(
            max_size=max_bytes,
            actual_size=request.content_length,
            text=json.dumps(
                {"error": f"body of {request.content_length} bytes; this endpoint takes at most {max_bytes}"}
            ),
            content_type="application/json",
        )
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
    if len(buffer) > max_bytes:
        raise web.HTTPRequestEntityTooLarge(
            max_size=max_bytes,
            actual_size=len(buffer),
            text=json.dumps({"error": f"body over {max_bytes} bytes, the most this endpoint takes"}),
            content_type="application/json",
        )
    try:
        value = json.loads(buffer)
    except RecursionError:
        raise _bad_request(f"body: JSON nested deeper than {max_depth} levels") from None
    except ValueError as exc:  # includes UnicodeDecodeError
        raise _bad_request(f"body is not JSON: {exc}") from None
    if json_depth_exceeds(value, max_depth):
        raise _bad_request(f"body: JSON nested deeper than {max_depth} levels")
    return value


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


class ClientErrorsQuiet(logging.Filter):
    """aiohttp logs every request it cannot parse (a URL or header over 8 KiB, a bad method...) with a full
    traceback before answering 400. That is the client's fault, not the node's: one line at DEBUG instead, so
    anyone who can reach the port cannot fill the log with tracebacks."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and exc.code is not None and 400 <= exc.code < 500:
            log.debug("refused a malformed HTTP request (%d): %s", exc.code, exc.message)
            return False
        return True


_server_log = logging.getLogger("node.api.server")
_server_log.addFilter(ClientErrorsQuiet())


class HttpApiService(Service):
    """Serves the routes the node's subsystems registered."""

    name = "http"

    def __init__(self, host: str, port: int) -> None:
        # client_max_size bounds only `request.read()`/`post()`; JSON routes bound their own bodies (read_json) and
        # uploads stream, so nothing needs more than a small default here.
        self.app = web.Application(middlewares=[json_errors], client_max_size=1 << 20)
        self.app[STOPPING] = asyncio.Event()
        self.app.on_shutdown.append(_stopping)
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None
        self.url = ""

    def add_routes(self, routes: list[web.RouteDef]) -> None:
        self.app.add_routes(routes)

    async def start(self) -> None:
        # lingering_time: after answering a request whose body it did not read (a refusal before the body
        # mattered), aiohttp keeps reading that body for up to 10 s by default, and a stopping node waits for it.
        # One second is ample for a client on this host or LAN and keeps `stop` prompt.
        self._runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, lingering_time=LINGER_S, logger=_server_log
        )
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
