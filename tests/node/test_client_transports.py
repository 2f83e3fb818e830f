"""Both transports of the node client against a real HTTP server: the same answers become the same values and the
same errors (refusal, unreachable, timeout), uploads and downloads stream, and the operator token goes only where
the API asks for it. The server is a small aiohttp app speaking the node API's conventions on the routes used."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from node.client import AsyncNodeClient, NodeClient, NodeRefused, NodeTimeout, NodeUnreachable
from node.client.aio import AiohttpTransport
from node.client.stdlib import ThreadedTransport

Client = Callable[[str, str | None], Any]
BIG = bytes(range(256)) * 4096  # 1 MiB: several chunks each way


async def _app(seen: dict[str, Any]) -> web.Application:
    async def status(request: web.Request) -> web.Response:
        seen["auth"] = request.headers.get("Authorization")
        return web.json_response({"chain_id": "test-chain", "height": 7})

    async def pins(request: web.Request) -> web.Response:
        seen["auth"] = request.headers.get("Authorization")
        if request.headers.get("Authorization") != "Bearer secret":
            return web.json_response({"error": "operator token required"}, status=401)
        return web.json_response({"pins": [{"cid": "b1", "replication": 2}]})

    async def refuse(request: web.Request) -> web.Response:
        return web.json_response({"error": "nonce 3 is already used", "code": "nonce"}, status=409)

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.5)
        return web.json_response({})

    async def add(request: web.Request) -> web.Response:
        seen["chunked"] = request.headers.get("Transfer-Encoding")
        data = await request.read()
        seen["uploaded"] = data
        return web.json_response({"cid": f"len{len(data)}", "holders": 1, "replication": 1})

    async def cat(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for i in range(0, len(BIG), 100_000):
            await response.write(BIG[i : i + 100_000])
        await response.write_eof()
        return response

    app = web.Application()
    app.add_routes([
        web.get("/status", status), web.get("/pins", pins), web.post("/tx", refuse), web.get("/blocks/{h}", slow),
        web.post("/objects", add), web.get("/objects/{cid}", cat),
    ])  # fmt: skip
    return app


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, dict[str, Any]]]:
    seen: dict[str, Any] = {}
    runner = web.AppRunner(await _app(seen))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


class SyncInThread:
    """NodeClient (standard library, blocking) driven from the test's loop through a worker thread."""

    def __init__(self, url: str, token: str | None, timeout_s: float = 10.0) -> None:
        self.client = NodeClient.connect(url, token, timeout_s)

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self.client, name)
        return lambda *args, **kwargs: asyncio.to_thread(method, *args, **kwargs)


def _sync(url: str, token: str | None, timeout_s: float = 10.0) -> Any:
    return SyncInThread(url, token, timeout_s)


def _aiohttp(url: str, token: str | None, timeout_s: float = 10.0) -> Any:
    return AsyncNodeClient(AiohttpTransport(url, token, timeout_s))


def _threaded(url: str, token: str | None, timeout_s: float = 10.0) -> Any:
    return AsyncNodeClient(ThreadedTransport(url, token, timeout_s))


CLIENTS = pytest.mark.parametrize("make", [_sync, _aiohttp, _threaded], ids=["stdlib", "aiohttp", "threaded"])


@CLIENTS
async def test_answers_become_values_and_the_token_goes_only_to_operator_routes(make: Any, server: Any) -> None:
    url, seen = server
    client = make(url, "secret")
    assert (await client.status())["chain_id"] == "test-chain"
    assert seen["auth"] is None  # a public route never carries the operator token
    assert await client.pins() == [{"cid": "b1", "replication": 2}]
    assert seen["auth"] == "Bearer secret"
    assert (await make(url, None).chain_id()) == "test-chain"


@CLIENTS
async def test_a_refusal_carries_the_nodes_status_message_and_code(make: Any, server: Any) -> None:
    url, _ = server
    with pytest.raises(NodeRefused) as refused:
        await make(url, None).submit(b"\x01")
    found = (refused.value.status, refused.value.message, refused.value.code)
    assert found == (409, "nonce 3 is already used", "nonce")
    assert refused.value.doc == {"error": "nonce 3 is already used", "code": "nonce"}  # the whole refusal
    with pytest.raises(NodeRefused) as unauthorised:
        await make(url, None).pins()
    assert unauthorised.value.status == 401 and unauthorised.value.exit_code == 1


@CLIENTS
async def test_no_listener_is_unreachable_and_a_silent_node_times_out(make: Any, server: Any) -> None:
    url, _ = server
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(NodeUnreachable) as unreachable:
        await make(closed, None).status()
    assert unreachable.value.exit_code == 2
    with pytest.raises(NodeTimeout):
        await make(url, None, 0.5).block(1)


@CLIENTS
async def test_uploads_and_downloads_stream(make: Any, server: Any) -> None:
    url, seen = server
    client = make(url, None)
    chunks = [BIG[i : i + 65536] for i in range(0, len(BIG), 65536)]
    added = await client.add(iter(chunks), replication=1)
    assert added["cid"] == f"len{len(BIG)}" and seen["uploaded"] == BIG and seen["chunked"] == "chunked"
    received: list[bytes] = []
    await client.cat("b1", received.append)
    assert b"".join(received) == BIG and len(received) > 1


def test_the_two_clients_offer_the_same_methods() -> None:
    import inspect

    def methods(cls: type) -> set[str]:
        return {name for name, _ in inspect.getmembers(cls, inspect.isfunction) if not name.startswith("_")}

    assert methods(NodeClient) ^ methods(AsyncNodeClient) == {"close", "at"}
