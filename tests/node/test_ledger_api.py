"""POST /tx status codes: 400 names the problem, 503 (retry later) when the only refusals are "busy"."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from consensus.errors import MempoolFullError, TxSignatureError
from consensus.genesis import Params
from consensus.mempool_journal import JournalError
from consensus.tx import Tx
from node.api.ledger import ledger_routes
from node.api.server import json_errors
from node.ledger.service import LedgerService
from primitives.keys import SigningKey

KEY = SigningKey(bytes(range(32)))
GOOD = Tx.create(KEY, "c", "record", 0, {"key": b"k", "value": b"v"})


class FakeLedger:
    """Accepts b"ok…" transactions, refuses b"busy…" as busy and anything else as a bad signature. `durable` records
    what had been admitted when it was awaited, or fails as a failed journal write would."""

    def __init__(self, journal_fails: bool = False) -> None:
        self.journal_fails = journal_fails
        self.admitted = 0
        self.durable_at: list[int] = []
        self.genesis = SimpleNamespace(params=Params())  # the route bounds its body from max_tx_bytes

    async def durable(self) -> None:
        self.durable_at.append(self.admitted)
        if self.journal_fails:
            raise JournalError("mempool journal write failed: disk full")

    def submit_tx(self, raw: bytes) -> Tx:
        if raw.startswith(b"busy"):
            raise MempoolFullError("node is busy: 4000 transactions wait for a block; retry later")
        if raw.startswith(b"ok"):
            self.admitted += 1
            return GOOD
        raise TxSignatureError("signature does not verify against the sender's public key")


async def post(body: object, ledger: FakeLedger | None = None) -> tuple[int, dict[str, Any]]:
    app = web.Application(middlewares=[json_errors])
    app.add_routes(ledger_routes(cast(LedgerService, ledger or FakeLedger())))
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


async def test_the_answer_waits_until_every_accepted_transaction_is_on_disk() -> None:
    ledger = FakeLedger()
    assert (await post({"txs": [b"ok".hex(), b"bad".hex(), b"ok".hex()]}, ledger))[0] == 400
    assert ledger.durable_at == [2]  # awaited after the last admission: the partly accepted batch is durable too
    nothing = FakeLedger()
    assert (await post({"tx": b"bad".hex()}, nothing))[0] == 400
    assert nothing.durable_at == []  # nothing accepted, nothing to wait for


async def test_a_failed_journal_write_is_not_an_acknowledgement() -> None:
    status, answer = await post({"txs": [b"ok".hex()]}, FakeLedger(journal_fails=True))
    assert status == 503 and "not acknowledged" in answer["error"] and "disk full" in answer["error"]
    assert answer["unconfirmed"] == [GOOD.hash.hex()] and "hashes" not in answer
