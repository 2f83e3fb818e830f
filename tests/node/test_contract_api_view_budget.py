"""The per-source view gas budget (pure, fake clock) and its 429 through the real route and view worker."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from consensus.chainstore import ChainStore
from consensus.genesis import Params
from consensus.tx import Tx
from node.api.contracts import contract_routes
from node.api.server import json_errors
from node.views.budget import GasBudget
from node.views.service import ViewService
from primitives import codec
from tests.consensus.ledger_helpers import ADMIN_KEY, CHAIN_ID, Chain, make_genesis
from tests.node.test_contracts_api import StubLedger


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_source_may_hold_its_capacity_and_regains_it_at_the_refill_rate() -> None:
    clock = Clock()
    budget = GasBudget(capacity=1000, refill_per_s=100, clock=clock)
    assert budget.reserve("a", 600) is None
    assert budget.reserve("a", 600) == pytest.approx(2.0)  # 400 left: 200 more take 2 s
    assert budget.reserve("b", 1000) is None  # another source has its own bucket
    clock.now = 2.0
    assert budget.reserve("a", 600) is None
    budget.refund("a", 550)  # the view used 50 of its 600
    assert budget.available("a") == 550
    clock.now = 100.0
    assert budget.available("a") == 1000  # never above capacity
    assert budget.reserve("a", 5000) == pytest.approx(0.0)  # more than the capacity: never (caller must ask less)


async def test_a_source_past_its_budget_gets_429_with_retry_after(tmp_path: Path) -> None:
    chain = Chain()
    store = ChainStore(tmp_path / "chain", chain.genesis, initial_map_size=1 << 20)
    ledger = StubLedger(chain.genesis, store)
    clock = Clock()
    views = ViewService(ledger.genesis.params.max_tx_gas, clock=clock)
    app = web.Application(middlewares=[json_errors])
    app.add_routes(contract_routes(ledger, views))
    body = {"function": "policy_list", "args": [{"/": {"bytes": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}]}
    max_gas = ledger.genesis.params.max_tx_gas
    try:
        async with TestClient(TestServer(app)) as client:
            # Reserve the whole budget but one view's worth, as a source with views in flight would.
            views.budget.reserve("address 127.0.0.1", views.budget.capacity - max_gas)
            ok = await client.post("/contracts/ehr/call", json={**body, "gas_limit": max_gas})
            assert ok.status == 422, await ok.text()  # ran (and reverted: no such patient)
            used = (await ok.json())["gas_used"]
            assert 0 < used < max_gas  # refunded all but what it used
            refused = await client.post("/contracts/ehr/call", json={**body, "gas_limit": max_gas})
            assert refused.status == 429
            assert "budget" in (await refused.json())["error"] and int(refused.headers["Retry-After"]) >= 1
            small = await client.post("/contracts/ehr/call", json=body)  # the default gas still fits
            assert small.status == 422
            clock.now += 10.0  # one refill period gives a maximum-gas view back
            again = await client.post("/contracts/ehr/call", json={**body, "gas_limit": max_gas})
            assert again.status == 422
    finally:
        await views.stop()
        store.close()


SPIN = """
def one() -> int:
    return 1


def spin() -> int:
    n = 0
    while True:
        n = n + 1
    return n
"""


async def test_a_view_past_the_wall_clock_bound_is_a_503_and_its_worker_is_replaced(tmp_path: Path) -> None:
    huge = 2_000_000_000  # minutes of interpreter time (VM version 1 has no block-time rule to forbid it)
    chain = Chain(genesis=make_genesis(Params(max_tx_gas=huge, max_block_gas=huge, vm_version=1)))
    store = ChainStore(tmp_path / "chain", chain.genesis, initial_map_size=1 << 20)
    deploy: dict[str, codec.Value] = {"source": SPIN, "args": [], "gas_limit": 10**6, "name": "spin"}
    block, _, commit = chain.add_block([Tx.create(ADMIN_KEY, CHAIN_ID, "deploy", 0, deploy)])
    store.import_block(block, commit, chain.registry)
    ledger = StubLedger(chain.genesis, store)
    views = ViewService(huge, timeout_s=1.0)
    app = web.Application(middlewares=[json_errors])
    app.add_routes(contract_routes(ledger, views))
    try:
        async with TestClient(TestServer(app)) as client:
            first = await client.post("/contracts/spin/call", json={"function": "one", "args": []})
            assert first.status == 200 and (await first.json())["return"] == 1
            spun = await client.post("/contracts/spin/call", json={"function": "spin", "args": [], "gas_limit": huge})
            assert spun.status == 503 and "longer than 1 s" in (await spun.json())["error"]
            after = await client.post("/contracts/spin/call", json={"function": "one", "args": []})
            assert after.status == 200 and (await after.json())["return"] == 1
    finally:
        await views.stop()
        store.close()
