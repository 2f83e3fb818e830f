"""The aiohttp transport, for processes that already run aiohttp (the node itself, the chaos runner, the demo,
async tests and benchmarks): requests share one `ClientSession` and its connection pool.

Never imported by the standard-library path (node/client/stdlib.py): a device's light client does not load aiohttp.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator

import aiohttp

from node.client.errors import NodeBadAnswer, NodeConnectionLost, NodeTimeout, NodeUnreachable
from node.client.request import CHUNK, DEFAULT_TIMEOUT_S, MAX_ERROR_BYTES, Answer, Request, Sink


async def _chunks(source: Iterable[bytes]) -> AsyncIterator[bytes]:
    """A blocking chunk iterator (a file being read) pulled in a worker thread, so the loop never waits on disk."""
    iterator: Iterator[bytes] = iter(source)
    while (chunk := await asyncio.to_thread(next, iterator, b"")) != b"":
        yield chunk


async def _read_bounded(content: aiohttp.StreamReader, limit: int) -> bytes:
    """At most `limit` bytes of a body (`StreamReader.read(n)` returns whatever is buffered, not n bytes)."""
    parts: list[bytes] = []
    size = 0
    while size < limit and (chunk := await content.read(min(CHUNK, limit - size))):
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


class AiohttpTransport:
    """Async HTTP to one node. Pass a `session` to share its pool among several nodes (its owner closes it);
    without one the transport opens its own on first use and `close()` closes it. `force_close` opens a fresh
    connection per request (the chaos runner wants no connection surviving a fault)."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        *,
        session: aiohttp.ClientSession | None = None,
        connect_timeout_s: float | None = None,
        force_close: bool = False,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.force_close = force_close
        self._session = session
        self._owns_session = session is None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=self.force_close))
        return self._session

    def at(self, base_url: str) -> AiohttpTransport:
        """The same kind of transport to another node, sharing this one's connection pool (opened here if need
        be; this transport's owner closes it)."""
        return AiohttpTransport(
            base_url,
            timeout_s=self.timeout_s,
            session=self._client(),
            connect_timeout_s=self.connect_timeout_s,
            force_close=self.force_close,
        )

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, request: Request, sink: Sink | None = None) -> Answer:
        url = self.base_url + request.path
        silence_s = request.timeout_s if request.timeout_s is not None else self.timeout_s
        # Silence is bounded, not the transfer (as http.client's socket timeout in the standard-library transport).
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.connect_timeout_s or silence_s, sock_read=silence_s
        )
        body = request.body
        data = body if body is None or isinstance(body, bytes) else _chunks(body)
        try:
            async with self._client().request(
                request.method,
                self.base_url + request.target(),
                data=data,
                headers=request.headers(self.token),
                timeout=timeout,
            ) as response:
                if response.status >= 400:
                    return Answer(response.status, await _read_bounded(response.content, MAX_ERROR_BYTES))
                if sink is not None:
                    async for chunk in response.content.iter_chunked(CHUNK):
                        sink(chunk)
                    return Answer(response.status, b"")
                answer = await _read_bounded(response.content, request.max_bytes + 1)
                if len(answer) > request.max_bytes:
                    raise NodeBadAnswer(url, f"the answer exceeds {request.max_bytes} bytes")
                return Answer(response.status, answer)
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise NodeUnreachable(url, f"cannot reach the node ({exc})") from exc
        except TimeoutError as exc:
            raise NodeTimeout(url, f"no answer within {silence_s:g} s") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise NodeConnectionLost(url, f"the connection broke ({exc!r})") from exc
