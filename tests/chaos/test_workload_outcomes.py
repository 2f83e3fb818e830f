"""The workload classifies each submission by what really happened on the wire: a closed port is `failed` (nothing
was sent), an answer is `acknowledged` only with the transaction's hash, any other answer is `refused`, and a
request sent without an answer is `indeterminate`."""

from __future__ import annotations

import asyncio
import socket
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web

from consensus.tx import Tx
from node.chaos import workload
from node.client import AsyncNodeClient
from node.client.aio import AiohttpTransport
from primitives.keys import SigningKey


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _session(urls: dict[str, str]) -> Any:
    records = {name: SimpleNamespace(http_url=url) for name, url in urls.items()}
    return SimpleNamespace(
        cluster=SimpleNamespace(records=records), clock=lambda: 1.0, lock=threading.Lock(), submissions=[]
    )


async def test_outcomes(monkeypatch: pytest.MonkeyPatch) -> None:
    tx = Tx.create(SigningKey.generate(), "c", "record", 0, {"key": b"k", "value": b"v"})
    silent = asyncio.Event()

    async def accept(request: web.Request) -> web.Response:
        return web.json_response({"hash": tx.hash.hex(), "hashes": [tx.hash.hex()]})

    async def refuse(request: web.Request) -> web.Response:
        return web.json_response({"error": "nonce 0 is already used"}, status=400)

    async def hang(request: web.Request) -> web.Response:
        await silent.wait()
        return web.json_response({})

    runners = []
    urls = {}
    for name, handler in (("ok", accept), ("no", refuse), ("hang", hang)):
        app = web.Application()
        app.router.add_post("/tx", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        port = _free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        urls[name] = f"http://127.0.0.1:{port}"
    urls["closed"] = f"http://127.0.0.1:{_free_port()}"
    session = _session(urls)
    try:
        for name in ("ok", "no", "hang", "closed"):
            async with AsyncNodeClient(AiohttpTransport(urls[name], timeout_s=0.5, connect_timeout_s=0.5)) as client:
                await workload.submit(client, session, name, tx)
    finally:
        silent.set()
        for runner in runners:
            await runner.cleanup()
    outcomes = {s.node: s.outcome for s in session.submissions}
    assert outcomes == {"ok": "acknowledged", "no": "refused", "hang": "indeterminate", "closed": "failed"}
    assert all(s.tx == tx.hash.hex() for s in session.submissions)
