"""The background workload: signed transactions at a set rate, round-robin to the nodes, every submission recorded
with its outcome; and periodic reads of the records stored for the experiment.

Each transaction is a `record` signed by a fresh key with nonce 0, so transactions are independent: one lost
transaction cannot hold back the nonces after it and turn into a cascade of "lost" ones that the ledger never
lost. A node holds at most `MAX_IN_FLIGHT` of our requests; a transaction due to a node at that limit goes to the
next node in turn (what a client with a connection pool does), so a paused node costs a few indeterminate outcomes,
not one per transaction while it is stopped.

Outcomes (history.Submission): connection refused or connect timeout → failed (nothing was sent); an answer →
acknowledged (200 with the hash) or refused (any other status); sent and then no answer or a reset → indeterminate.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time

from consensus.tx import Tx
from node.chaos.history import ReadAttempt, Submission
from node.chaos.session import ChaosSession
from node.client import AsyncNodeClient, NodeError, NodeRefused, NodeUnreachable
from primitives.keys import SigningKey

log = logging.getLogger("ehrnet.chaos")
MAX_IN_FLIGHT = 4
REQUEST_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 2.0
TICK_S = 0.05


def make_tx(chain_id: str, index: int) -> Tx:
    return Tx.create(SigningKey.generate(), chain_id, "record", 0, {"key": b"chaos/%d" % index, "value": b"v"})


async def submit(client: AsyncNodeClient, session: ChaosSession, node: str, tx: Tx) -> None:
    t = session.clock()
    tx_hash = tx.hash.hex()
    try:
        doc = await client.submit_batch([tx.raw])
        if tx_hash in (doc.get("hash"), *doc.get("hashes", [])):
            outcome, detail = "acknowledged", ""
        else:
            outcome, detail = "refused", f"200 {str(doc)[:120]}"
    except NodeRefused as exc:
        outcome, detail = "refused", f"{exc.status} {exc.message[:120]}"
    except NodeUnreachable as exc:  # nothing was sent
        outcome, detail = "failed", type(exc).__name__
    except NodeError as exc:  # sent, and no usable answer: it may or may not be held
        outcome, detail = "indeterminate", type(exc).__name__
    with session.lock:
        session.submissions.append(Submission(tx_hash, node, t, outcome, detail))  # type: ignore[arg-type]


async def run_transactions(session: ChaosSession, rate: float, max_duration_s: float) -> dict[str, int]:
    """Offer `rate` tx/s until the session's workload stop is set (or `max_duration_s` passes)."""
    names = list(session.cluster.records)
    chain_id = session.cluster.network.genesis.chain_id
    in_flight = dict.fromkeys(names, 0)
    tasks: set[asyncio.Task[None]] = set()
    skipped = 0
    async with session.node_clients(REQUEST_TIMEOUT_S, CONNECT_TIMEOUT_S, force_close=True) as clients:

        async def one(node: str, tx: Tx) -> None:
            in_flight[node] += 1
            try:
                await submit(clients[node], session, node, tx)
            finally:
                in_flight[node] -= 1

        start = time.monotonic()
        sent = 0
        while not session.workload_stop.is_set() and time.monotonic() - start < max_duration_s:
            due = int(rate * (time.monotonic() - start)) - sent - skipped
            for _ in range(due):
                index = sent + skipped
                node = next(
                    (
                        names[(index + k) % len(names)]
                        for k in range(len(names))
                        if in_flight[names[(index + k) % len(names)]] < MAX_IN_FLIGHT
                    ),
                    None,
                )
                if node is None:
                    skipped += 1
                    continue
                task = asyncio.create_task(one(node, make_tx(chain_id, index)))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent += 1
            await asyncio.sleep(TICK_S)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
    return {"sent": sent, "skipped_all_busy": skipped}


def live_holders(session: ChaosSession, holders: tuple[str, ...]) -> int:
    faulted = session.faulted_now()
    return sum(1 for h in holders if h not in faulted and session.cluster.alive(h))


async def read_once(client: AsyncNodeClient, session: ChaosSession, cid: str, node: str) -> ReadAttempt:
    holders = next((p.holders for p in session.pinned if p.cid == cid), ())
    alive_before = live_holders(session, holders)
    t = session.clock()
    served, detail = False, ""
    try:
        data = await client.cat_bytes(cid)
        served = hashlib.sha256(data).digest() == hashlib.sha256(session.record_bytes[cid]).digest()
        detail = "" if served else "bytes differ"
    except NodeRefused as exc:
        detail = f"{exc.status} {exc.message[:80]!r}"
    except NodeError as exc:
        detail = type(exc).__name__
    # A holder that died during the read did not have to serve it: count the ones alive throughout.
    alive = min(alive_before, live_holders(session, holders))
    return ReadAttempt(t, cid, node, served, True, alive, detail)


async def run_reads(session: ChaosSession, interval_s: float) -> int:
    """Read every stored record through each node that is not itself under a fault, every `interval_s`."""
    count = 0
    async with session.node_clients(REQUEST_TIMEOUT_S, force_close=True) as clients:
        while not session.workload_stop.is_set():
            faulted = session.faulted_now()
            for record in list(session.pinned):
                for node in session.cluster.records:
                    if node in faulted or not session.cluster.alive(node):
                        continue
                    attempt = await read_once(clients[node], session, record.cid, node)
                    with session.lock:
                        session.reads.append(attempt)
                    count += 1
            await asyncio.sleep(interval_s)
    return count
