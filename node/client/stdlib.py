"""The standard-library transport: `http.client`, one connection per request, streaming both ways.

For the CLI and the light client. A device must not pay for aiohttp (importing it alone peaks at ~33 MB, and the
light client must fit in 30 MB), so this module and what it imports stay free of it (tests/node/test_client_edge.py
checks). `ThreadedTransport` offers the same to asyncio callers by running each request in a worker thread.
"""

from __future__ import annotations

import asyncio
import http.client
import urllib.parse

from node.client.errors import NodeBadAnswer, NodeConnectionLost, NodeTimeout, NodeUnreachable
from node.client.request import CHUNK, DEFAULT_TIMEOUT_S, MAX_ERROR_BYTES, Answer, Request, Sink


class StdlibTransport:
    """Blocking HTTP to one node: `send` returns the status and body, or streams a 2xx body into `sink`."""

    def __init__(self, base_url: str, token: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        parts = urllib.parse.urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{base_url!r}: expected a node's http:// URL")
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path

    def _connection(self, timeout_s: float) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=timeout_s)
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout_s)

    def send(self, request: Request, sink: Sink | None = None) -> Answer:
        url = self.base_url + request.path
        timeout_s = request.timeout_s if request.timeout_s is not None else self.timeout_s
        connection = self._connection(timeout_s)
        try:
            try:
                connection.connect()
            except OSError as exc:  # nothing was sent: refused, no route, unknown host, or no connection in time
                raise NodeUnreachable(url, f"cannot reach the node ({exc})") from exc
            try:
                return self._exchange(connection, request, url, sink)
            except TimeoutError as exc:
                raise NodeTimeout(url, f"no answer within {timeout_s:g} s") from exc
            except (http.client.HTTPException, OSError) as exc:
                raise NodeConnectionLost(url, f"the connection broke ({exc!r})") from exc
        finally:
            connection.close()

    def _exchange(
        self, connection: http.client.HTTPConnection, request: Request, url: str, sink: Sink | None
    ) -> Answer:
        headers = request.headers(self.token)
        connection.request(request.method, self._prefix + request.target(), body=request.body, headers=headers)
        response = connection.getresponse()
        if response.status >= 400:
            return Answer(response.status, response.read(MAX_ERROR_BYTES))
        if sink is not None:
            while chunk := response.read(CHUNK):
                sink(chunk)
            return Answer(response.status, b"")
        body = response.read(request.max_bytes + 1)
        if len(body) > request.max_bytes:
            raise NodeBadAnswer(url, f"the answer exceeds {request.max_bytes} bytes")
        return Answer(response.status, body)


class ThreadedTransport:
    """`StdlibTransport` for asyncio callers that must not import aiohttp (the light client): each request runs
    in a worker thread, so the event loop keeps running while it waits."""

    def __init__(self, base_url: str, token: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.blocking = StdlibTransport(base_url, token, timeout_s)
        self.base_url = self.blocking.base_url

    async def send(self, request: Request, sink: Sink | None = None) -> Answer:
        return await asyncio.to_thread(self.blocking.send, request, sink)

    def at(self, base_url: str) -> ThreadedTransport:
        """The same kind of transport to another node (without this one's operator token)."""
        return ThreadedTransport(base_url, None, self.blocking.timeout_s)

    async def close(self) -> None:
        return None
