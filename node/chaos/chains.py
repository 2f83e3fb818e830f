"""Read every node's chain over HTTP (`GET /blocks/{height}`) for the invariant checker, and wait for the
acknowledged transactions to drain into blocks before judging them."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from node.chaos.history import BlockSummary
from node.chaos.session import ChaosSession

CONCURRENCY = 8


async def _status(http: aiohttp.ClientSession, url: str) -> dict[str, object] | None:
    try:
        async with http.get(url + "/status") as response:
            doc: dict[str, object] = await response.json()
            return doc
    except (TimeoutError, aiohttp.ClientError, ValueError):
        return None


async def fetch_chain(http: aiohttp.ClientSession, url: str, first: int = 1) -> list[BlockSummary]:
    status = await _status(http, url)
    if status is None:
        return []
    top = int(str(status.get("height", 0)))
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(height: int) -> BlockSummary | None:
        async with gate:
            for _ in range(3):
                try:
                    async with http.get(f"{url}/blocks/{height}") as response:
                        if response.status != 200:
                            return None
                        doc = await response.json()
                    return BlockSummary(
                        height=int(doc["height"]),
                        hash=str(doc["hash"]),
                        state_root=str(doc["state_root"]),
                        txs=tuple(str(tx["hash"]) for tx in doc["txs"]),
                        evidence=sum(1 for tx in doc["txs"] if tx.get("kind") == "evidence"),
                    )
                except (TimeoutError, aiohttp.ClientError):
                    await asyncio.sleep(0.2)
            return None

    blocks = await asyncio.gather(*(one(h) for h in range(first, top + 1)))
    return [b for b in blocks if b is not None]


async def fetch_chains(session: ChaosSession) -> dict[str, list[BlockSummary]]:
    timeout = aiohttp.ClientTimeout(total=10.0)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        names = [n for n in session.cluster.records if session.cluster.alive(n)]
        chains = await asyncio.gather(*(fetch_chain(http, session.cluster.records[n].http_url) for n in names))
    return dict(zip(names, chains, strict=True))


async def drain(session: ChaosSession, idle_s: float, max_s: float) -> bool:
    """Wait until every acknowledged transaction is final on some node, while blocks keep coming: stop after
    `idle_s` without a new final acknowledged transaction, or after `max_s`. True if all drained."""
    with session.lock:
        waiting = {s.tx for s in session.submissions if s.outcome == "acknowledged"}
    names = [n for n in session.cluster.records if session.cluster.alive(n)]
    if not names:
        return not waiting
    url = session.cluster.records[names[0]].http_url
    started = last_change = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=5.0)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        status = await _status(http, url)
        next_height = 1
        # Only the tail can still hold a waiting transaction: start from the oldest height worth reading.
        if status is not None:
            next_height = max(1, int(str(status.get("height", 0))) - 2000)
        while waiting and time.monotonic() - last_change < idle_s and time.monotonic() - started < max_s:
            try:
                async with http.get(f"{url}/blocks/{next_height}") as response:
                    if response.status == 404:
                        await asyncio.sleep(0.1)
                        continue
                    doc = await response.json()
            except (TimeoutError, aiohttp.ClientError):
                await asyncio.sleep(0.2)
                continue
            next_height += 1
            found = waiting & {str(tx["hash"]) for tx in doc["txs"]}
            if found:
                waiting -= found
                last_change = time.monotonic()
    return not waiting
