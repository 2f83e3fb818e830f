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

import aiohttp

from consensus.tx import Tx
from node.chaos.history import ReadAttempt, Submission
from node.chaos.session import ChaosSession
from primitives.keys import SigningKey

log = logging.getLogger("ehrnet.chaos")
MAX_IN_FLIGHT = 4
REQUEST_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 2.0
TICK_S = 0.05


def make_tx(chain_id: str, index: int) -> Tx:
    return Tx.create(SigningKey.generate(), chain_id, "record", 0, {"key": b"chaos/%d" % index, "value": b"v"})


async def submit(http: aiohttp.ClientSession, session: ChaosSession, node: str, tx: Tx) -> None:
    t = session.clock()
    tx_hash = tx.hash.hex()
    url = session.cluster.records[node].http_url + "/tx"
    try:
        async with http.post(url, json={"tx": tx.raw.hex()}) as response:
            body = await response.text()
            if response.status == 200 and tx_hash in body:
                outcome, detail = "acknowledged", ""
            else:
                outcome, detail = "refused", f"{response.status} {body[:120]}"
    except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
        outcome, detail = "failed", type(exc).__name__
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
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
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S, sock_connect=CONNECT_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(force_close=True)) as http:

        async def one(node: str, tx: Tx) -> None:
            in_flight[node] += 1
            try:
                await submit(http, session, node, tx)
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


async def read_once(http: aiohttp.ClientSession, session: ChaosSession, cid: str, node: str) -> ReadAttempt:
    holders = next((p.holders for p in session.pinned if p.cid == cid), ())
    alive_before = live_holders(session, holders)
    t = session.clock()
    url = session.cluster.records[node].http_url + f"/objects/{cid}"
    served, detail = False, ""
    try:
        async with http.get(url) as response:
            data = await response.read()
            if response.status == 200:
                served = hashlib.sha256(data).digest() == hashlib.sha256(session.record_bytes[cid]).digest()
                detail = "" if served else "bytes differ"
            else:
                detail = f"{response.status} {data[:80]!r}"
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        detail = type(exc).__name__
    # A holder that died during the read did not have to serve it: count the ones alive throughout.
    alive = min(alive_before, live_holders(session, holders))
    return ReadAttempt(t, cid, node, served, True, alive, detail)


async def run_reads(session: ChaosSession, interval_s: float) -> int:
    """Read every stored record through each node that is not itself under a fault, every `interval_s`."""
    count = 0
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(force_close=True)) as http:
        while not session.workload_stop.is_set():
            faulted = session.faulted_now()
            for record in list(session.pinned):
                for node in session.cluster.records:
                    if node in faulted or not session.cluster.alive(node):
                        continue
                    attempt = await read_once(http, session, record.cid, node)
                    with session.lock:
                        session.reads.append(attempt)
                    count += 1
            await asyncio.sleep(interval_s)
    return count
