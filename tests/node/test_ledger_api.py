"""POST /tx status codes: 400 names the problem, 503 (retry later) when the only refusals are "busy"."""

from __future__ import annotations

from typing import Any, cast

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from consensus.errors import MempoolFullError, TxSignatureError
from consensus.keys import SigningKey
from consensus.tx import Tx
from node.api import json_errors
from node.ledger_api import ledger_routes
from node.ledger_service import LedgerService

KEY = SigningKey(bytes(range(32)))
GOOD = Tx.create(KEY, "c", "record", 0, {"key": b"k", "value": b"v"})


class FakeLedger:
    """Accepts b"ok…" transactions, refuses b"busy…" as busy and anything else as a bad signature."""

    def submit_tx(self, raw: bytes) -> Tx:
        if raw.startswith(b"busy"):
            raise MempoolFullError("node is busy: 4000 transactions wait for a block; retry later")
        if raw.startswith(b"ok"):
            return GOOD
        raise TxSignatureError("signature does not verify against the sender's public key")


async def post(body: object) -> tuple[int, dict[str, Any]]:
    app = web.Application(middlewares=[json_errors])
    app.add_routes(ledger_routes(cast(LedgerService, FakeLedger())))
    async with TestClient(TestServer(app)) as client:
        response = await client.post("/tx", json=body)
        return response.status, await response.json()


async def test_single_transactions_get_400_naming_the_problem_or_200() -> None:
    assert await post({"tx": b"ok".hex()}) == (200, {"hash": GOOD.hash.hex(), "hashes": [GOOD.hash.hex()]})
    status, answer = await post({"tx": b"bad".hex()})
    assert status == 400 and "signature" in answer["error"]
    status, answer = await post({"tx": "zz"})
    assert status == 400 and "hex" in answer["error"]
    status, answer = await post({"txs": "not a list"})
    assert status == 400 and "body" in answer["error"]


async def test_busy_refusals_are_503_and_list_what_was_accepted() -> None:
    status, answer = await post({"tx": b"busy".hex()})
    assert status == 503 and "busy" in answer["error"]
    status, answer = await post({"txs": [b"ok".hex(), b"busy".hex(), b"busy".hex()]})
    assert status == 503 and answer["hashes"] == [GOOD.hash.hex()]
    assert [r["index"] for r in answer["rejected"]] == [1, 2]
    # A real problem among them is a client error: 400, with every refusal listed.
    status, answer = await post({"txs": [b"busy".hex(), b"bad".hex()]})
    assert status == 400 and [r["index"] for r in answer["rejected"]] == [0, 1]
