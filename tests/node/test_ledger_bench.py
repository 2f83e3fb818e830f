"""The ledger benchmark's load generator against fake nodes: it ends, and counts what it could not place."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bench import ledger as ledger_bench
from node.client import AsyncNodeClient


def _always_busy_node() -> web.Application:
    # A node whose gossip is down: its pool never drains, so it answers "busy" to every transaction for ever,
    # and no block ever becomes final.
    async def status(request: web.Request) -> web.Response:
        return web.json_response({"height": 0})

    async def block(request: web.Request) -> web.Response:
        return web.json_response({"error": "no final block"}, status=404)

    async def submit(request: web.Request) -> web.Response:
        txs = (await request.json())["txs"]
        await asyncio.sleep(0.05)  # a loaded node answers slowly: the run's end finds the request in flight
        rejected = [{"index": i, "error": f"txs[{i}]: node is busy; retry later"} for i in range(len(txs))]
        return web.json_response({"error": "busy", "rejected": rejected, "hashes": []}, status=503)

    app = web.Application()
    app.add_routes([web.get("/status", status), web.get("/blocks/{height}", block), web.post("/tx", submit)])
    return app


async def test_a_node_busy_for_ever_does_not_keep_the_run_going(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger_bench, "DRAIN_IDLE_S", 0.3)
    monkeypatch.setattr(ledger_bench, "BUSY_BACKOFF_S", 0.001)
    server = TestServer(_always_busy_node())
    await server.start_server()
    try:
        per_sender = ledger_bench.presign("bench-chain", 2, 10)
        url = str(server.make_url("")).rstrip("/")
        report = await asyncio.wait_for(ledger_bench._drive([url], per_sender, rate=50, duration=0.2), timeout=30)
    finally:
        await server.close()
    assert report["acknowledged"] == 0 and report["lost"] == 0 and report["committed"] == 0
    assert report["never_accepted"] == report["offered_tps"] * 0.2 and report["busy_answers"] > 0


def test_the_runs_ed25519_unit_is_one_signature_check_and_refuses_a_bad_signature() -> None:
    txs = [tx for sender in ledger_bench.presign("bench-chain", 4, 40) for tx in sender]
    per_check = ledger_bench.ed25519_verify_s(txs, rounds=2)
    assert 0 < per_check < 0.01  # one check is tens of microseconds; a sum over the sample would be ~40x that
    forged = dataclasses.replace(txs[0], signature=bytes(64))
    with pytest.raises(AssertionError):
        ledger_bench.ed25519_verify_s([forged], rounds=1)


async def test_a_batch_the_node_takes_in_part_counts_what_it_took_and_what_was_busy() -> None:
    # A node at its backlog bound takes part of a large batch and refuses the rest as busy, one entry (with the
    # node's full message) per refused transaction: far longer than a usual error answer, and read whole.
    txs = [tx for sender in ledger_bench.presign("bench-chain", 4, 2000) for tx in sender]
    took = [t.hash.hex() for t in txs[::2]]
    message = "node is busy: 20000 transactions wait for a block (at most 20000); retry later"

    async def submit(request: web.Request) -> web.Response:
        count = len((await request.json())["txs"])
        rejected = [{"index": i, "error": f"txs[{i}]: {message}"} for i in range(1, count, 2)]
        return web.json_response({"error": rejected[0]["error"], "rejected": rejected, "hashes": took}, status=503)

    app = web.Application()
    app.add_routes([web.post("/tx", submit)])
    server = TestServer(app)
    await server.start_server()
    client = AsyncNodeClient.connect(str(server.make_url("")).rstrip("/"))
    try:
        accepted, busy = await ledger_bench.offer(client, txs)
    finally:
        await client.close()
        await server.close()
    assert accepted == set(took) and busy == set(range(1, len(txs), 2))


def test_a_node_s_work_is_read_per_transaction_per_block_and_per_batch() -> None:
    status = {
        "height": 10,
        "work": {"signature_checks": 800, "block_executions": 12},
        "gossip": {
            "messages": {
                "/ehrnet/c/consensus/1": {"received": 90, "judged": 30},
                "/ehrnet/c/txs/1": {"received": 6, "judged": 3},
            }
        },
    }
    assert ledger_bench.work_counts(status, committed=400) == {
        "signature_checks_per_tx": 2.0,
        "executions_per_block": 1.2,
        "tx_batch_copies": 2.0,
        "consensus_copies": 3.0,
    }
    # An older node (no counters), or a run that committed nothing: unknown, not zero.
    assert set(ledger_bench.work_counts({"height": 3}, committed=0).values()) == {None}
