"""POST /tx status codes: 400 names the problem, 503 (retry later) when the only refusals are "busy"."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from consensus.chainstore import ChainStore
from consensus.errors import MempoolFullError, TxNonceError, TxSignatureError
from consensus.mempool_journal import JournalError
from consensus.tx import Tx
from node.api.ledger import ledger_routes
from node.api.server import json_errors
from primitives.keys import SigningKey
from tests.consensus.ledger_helpers import USER_KEYS, Chain, make_genesis, record
from tests.harness import await_until
from tests.node.store_ledger import StoreLedger

KEY = SigningKey(bytes(range(32)))
GOOD = Tx.create(KEY, "c", "record", 0, {"key": b"k", "value": b"v"})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ChainStore]:
    chain_store = ChainStore(tmp_path / "chain", make_genesis(), initial_map_size=1 << 20)
    yield chain_store
    chain_store.close()


class FakeLedger(StoreLedger):
    """Accepts b"ok…" transactions, refuses b"busy…" as busy and anything else as a bad signature. `durable` records
    what had been admitted when it was awaited, or fails as a failed journal write would."""

    def __init__(self, store: ChainStore, journal_fails: bool = False) -> None:
        super().__init__(store.genesis, store)  # the route bounds its body from the genesis' max_tx_bytes
        self.journal_fails = journal_fails
        self.admitted = 0
        self.durable_at: list[int] = []

    async def durable(self) -> None:
        self.durable_at.append(self.admitted)
        if self.journal_fails:
            raise JournalError("mempool journal write failed: disk full")

    def submit_tx(self, raw: bytes) -> Tx:
        if raw.startswith(b"busy"):
            raise MempoolFullError("node is busy: 4000 transactions wait for a block; retry later")
        if raw.startswith(b"used"):
            raise TxNonceError("nonce 3 is already used; the sender's next nonce is 4")
        if raw.startswith(b"ok"):
            self.admitted += 1
            return GOOD
        raise TxSignatureError("signature does not verify against the sender's public key")


async def post(body: object, ledger: FakeLedger) -> tuple[int, dict[str, Any]]:
    app = web.Application(middlewares=[json_errors])
    app.add_routes(ledger_routes(ledger))
    async with TestClient(TestServer(app)) as client:
        response = await client.post("/tx", json=body)
        return response.status, await response.json()


async def test_single_transactions_get_400_naming_the_problem_or_200(store: ChainStore) -> None:
    ledger = FakeLedger(store)
    assert await post({"tx": b"ok".hex()}, ledger) == (200, {"hash": GOOD.hash.hex(), "hashes": [GOOD.hash.hex()]})
    status, answer = await post({"tx": b"bad".hex()}, ledger)
    assert status == 400 and "signature" in answer["error"]
    status, answer = await post({"tx": "zz"}, ledger)
    assert status == 400 and "hex" in answer["error"]
    status, answer = await post({"txs": "not a list"}, ledger)
    assert status == 400 and "body" in answer["error"]


async def test_a_used_nonce_is_409_alone_and_400_in_a_mix(store: ChainStore) -> None:
    # A retry of a transaction that is already final is answered 409 `nonce N is already used`.
    ledger = FakeLedger(store)
    status, answer = await post({"tx": b"used".hex()}, ledger)
    assert status == 409 and "already used" in answer["error"]
    status, answer = await post({"txs": [b"used".hex(), b"bad".hex()]}, ledger)
    assert status == 400 and len(answer["rejected"]) == 2


async def test_busy_refusals_are_503_and_list_what_was_accepted(store: ChainStore) -> None:
    ledger = FakeLedger(store)
    status, answer = await post({"tx": b"busy".hex()}, ledger)
    assert status == 503 and "busy" in answer["error"]
    status, answer = await post({"txs": [b"ok".hex(), b"busy".hex(), b"busy".hex()]}, ledger)
    assert status == 503 and answer["hashes"] == [GOOD.hash.hex()]
    assert [r["index"] for r in answer["rejected"]] == [1, 2]
    # A real problem among them is a client error: 400, with every refusal listed.
    status, answer = await post({"txs": [b"busy".hex(), b"bad".hex()]}, ledger)
    assert status == 400 and [r["index"] for r in answer["rejected"]] == [0, 1]


async def test_the_answer_waits_until_every_accepted_transaction_is_on_disk(store: ChainStore) -> None:
    ledger = FakeLedger(store)
    assert (await post({"txs": [b"ok".hex(), b"bad".hex(), b"ok".hex()]}, ledger))[0] == 400
    assert ledger.durable_at == [2]  # awaited after the last admission: the partly accepted batch is durable too
    nothing = FakeLedger(store)
    assert (await post({"tx": b"bad".hex()}, nothing))[0] == 400
    assert nothing.durable_at == []  # nothing accepted, nothing to wait for


async def test_a_failed_journal_write_is_not_an_acknowledgement(store: ChainStore) -> None:
    status, answer = await post({"txs": [b"ok".hex()]}, FakeLedger(store, journal_fails=True))
    assert status == 503 and "not acknowledged" in answer["error"] and "disk full" in answer["error"]
    assert answer["unconfirmed"] == [GOOD.hash.hex()] and "hashes" not in answer


# ---- GET /tx/{hash}?wait=final: the long-poll, over a real chain store and commit feed -------------------------


async def test_a_long_poll_is_answered_when_the_block_is_final_and_else_when_it_times_out(tmp_path: Path) -> None:
    chain = Chain()
    store = ChainStore(tmp_path / "chain", chain.genesis, initial_map_size=1 << 20)
    ledger = StoreLedger(chain.genesis, store)
    tx = record(USER_KEYS[0], 0)
    app = web.Application(middlewares=[json_errors])
    app.add_routes(ledger_routes(ledger))
    async with TestClient(TestServer(app)) as client:
        url = f"/tx/{tx.hash.hex()}"
        # Unknown here, and still unknown when the wait ends: the answer without `wait`, a 404.
        response = await client.get(url, params={"wait": "final", "timeout": "0.1"})
        assert response.status == 404
        ledger.submit_tx(tx.raw)
        response = await client.get(url, params={"wait": "final", "timeout": "0.1"})
        assert response.status == 200 and (await response.json())["status"] == "pending"
        assert ledger.feed.waiters == 0
        waiting = asyncio.create_task(client.get(url, params={"wait": "final", "timeout": "30"}))
        await await_until(lambda: ledger.feed.waiters == 1, 5, what="the request is parked on the feed")
        block, _, commit = chain.add_block([tx])
        began = time.monotonic()
        ledger.import_block(block, commit, chain.registry)
        response = await asyncio.wait_for(waiting, 5)
        assert time.monotonic() - began < 5  # woken by the block, not by its 30 s timeout
        answer = await response.json()
        assert response.status == 200 and answer["status"] == "final" and answer["height"] == 1
        assert ledger.feed.waiters == 0
    store.close()


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"wait": "final", "timeout": "soon"}, "timeout"),
        ({"wait": "final", "timeout": "-1"}, "timeout"),
        ({"wait": "final", "timeout": "61"}, "timeout"),
        ({"wait": "final", "timeout": "nan"}, "timeout"),
        ({"wait": "forever"}, "wait"),
        ({"wait": "final"}, "timeout"),
        ({"timeout": "5"}, "timeout"),
    ],
)
async def test_a_bad_wait_or_timeout_is_a_400_naming_it(store: ChainStore, query: dict[str, str], field: str) -> None:
    app = web.Application(middlewares=[json_errors])
    app.add_routes(ledger_routes(FakeLedger(store)))
    async with TestClient(TestServer(app)) as client:
        response = await client.get(f"/tx/{GOOD.hash.hex()}", params=query)
        assert response.status == 400
        assert (await response.json())["error"].startswith(f"{field}:")
