"""Read every node's chain over HTTP (`GET /blocks/{height}`) for the invariant checker, and wait for the
acknowledged transactions to drain into blocks before judging them."""

from __future__ import annotations

import asyncio
import time

from node.chaos.history import BlockSummary
from node.chaos.session import ChaosSession
from node.client import AsyncNodeClient, NodeError, NodeRefused

CONCURRENCY = 8


async def _height(client: AsyncNodeClient) -> int | None:
    try:
        return int(str((await client.status()).get("height", 0)))
    except (NodeError, ValueError):
        return None


async def fetch_chain(client: AsyncNodeClient, first: int = 1) -> list[BlockSummary]:
    top = await _height(client)
    if top is None:
        return []
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(height: int) -> BlockSummary | None:
        async with gate:
            for _ in range(3):
                try:
                    doc = await client.block(height)
                    return BlockSummary(
                        height=int(doc["height"]),
                        hash=str(doc["hash"]),
                        state_root=str(doc["state_root"]),
                        txs=tuple(str(tx["hash"]) for tx in doc["txs"]),
                        evidence=sum(1 for tx in doc["txs"] if tx.get("kind") == "evidence"),
                    )
                except NodeRefused:
                    return None
                except NodeError:
                    await asyncio.sleep(0.2)
            return None

    blocks = await asyncio.gather(*(one(h) for h in range(first, top + 1)))
    return [b for b in blocks if b is not None]


async def fetch_chains(session: ChaosSession) -> dict[str, list[BlockSummary]]:
    names = [n for n in session.cluster.records if session.cluster.alive(n)]
    async with session.node_clients(timeout_s=10.0) as clients:
        chains = await asyncio.gather(*(fetch_chain(clients[n]) for n in names))
    return dict(zip(names, chains, strict=True))


async def drain(session: ChaosSession, idle_s: float, max_s: float) -> bool:
    """Wait until every acknowledged transaction is final on some node, while blocks keep coming: stop after
    `idle_s` without a new final acknowledged transaction, or after `max_s`. True if all drained."""
    with session.lock:
        waiting = {s.tx for s in session.submissions if s.outcome == "acknowledged"}
    names = [n for n in session.cluster.records if session.cluster.alive(n)]
    if not names:
        return not waiting
    started = last_change = time.monotonic()
    async with session.node_clients(timeout_s=5.0) as clients:
        client = clients[names[0]]
        head = await _height(client)
        # Only the tail can still hold a waiting transaction: start from the oldest height worth reading.
        next_height = 1 if head is None else max(1, head - 2000)
        while waiting and time.monotonic() - last_change < idle_s and time.monotonic() - started < max_s:
            try:
                doc = await client.block(next_height)
            except NodeRefused as exc:
                await asyncio.sleep(0.1 if exc.status == 404 else 0.2)
                continue
            except NodeError:
                await asyncio.sleep(0.2)
                continue
            next_height += 1
            found = waiting & {str(tx["hash"]) for tx in doc["txs"]}
            if found:
                waiting -= found
                last_change = time.monotonic()
    return not waiting
