"""HTTP routes of the ledger (docs/API.md, "Ledger"): submit transactions, follow them, read blocks.

`GET /tx/{hash}?wait=final&timeout=S` is a long-poll: the request is parked on the ledger's commit feed
(node/ledger/commit_feed.py) and answered the moment the block holding the transaction is final here, or when
the timeout ends — with the status it has then, exactly as the same request without `wait` would be answered.
Nothing polls: a parked request costs one future until it is answered.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping

from aiohttp import web

from consensus.block import block_to_json
from consensus.errors import (
    LedgerError,
    MempoolFullError,
    TxError,
    TxNonceError,
    TxNotAllowlistedError,
    TxRateLimitError,
    TxSizeError,
)
from node.api.server import STOPPING, json_error, read_json
from node.ledger.protocol import Ledger

MAX_BATCH = 5000
MAX_HEIGHT = (1 << 63) - 1  # heights are stored as 8-byte keys; a larger number is no height at all
# A long-poll is bounded, so that a parked request (and what it holds) always ends: a client that wants to wait
# longer asks again. Proxies commonly cut idle HTTP requests after 60 s.
MAX_WAIT_S = 60.0


def max_submit_bytes(max_tx_bytes: int) -> int:
    """The largest body `POST /tx` can need: a full batch of maximum-size transactions in hex, quoted and
    comma-separated, plus the wrapping object. Anything larger is refused before it is read."""
    return MAX_BATCH * (2 * max_tx_bytes + 4) + 64


def _hex32(text: str, what: str) -> bytes:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise web.HTTPBadRequest(reason=f"{what}: 64 hex characters")
    return raw


# Refusals that keep their own status when they are the only kind in an answer: the sender's (403 not allowlisted,
# 429 over its limits), a nonce already used (409: a retry of a final transaction, docs/API.md) and a transaction
# over the size bound (413). Anything else, or a mix, is a plain 400.
KEPT_REFUSALS = frozenset(
    {TxNotAllowlistedError.http_status, TxRateLimitError.http_status, TxNonceError.http_status, TxSizeError.http_status}
)


def wait_seconds(query: Mapping[str, str]) -> float | None:
    """The long-poll of `GET /tx/{hash}`: None without `wait`, else how long to wait (seconds). Raises
    HTTPBadRequest naming the parameter that is wrong."""
    wait, text = query.get("wait"), query.get("timeout")
    if wait is None:
        if text is not None:
            raise web.HTTPBadRequest(reason="timeout: only together with wait=final")
        return None
    if wait != "final":
        raise web.HTTPBadRequest(reason="wait: the only value is 'final'")
    if text is None:  # no hidden default: the caller says how long it is prepared to wait
        raise web.HTTPBadRequest(reason=f"timeout: required with wait=final (seconds, 0 to {MAX_WAIT_S:g})")
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds <= MAX_WAIT_S:  # also refuses nan
        raise web.HTTPBadRequest(reason=f"timeout: seconds, a number from 0 to {MAX_WAIT_S:g}")
    return seconds


async def _until_final(ledger: Ledger, app: web.Application, tx_hash: bytes, seconds: float) -> None:
    """Wait until `tx_hash` is final here (the commit feed wakes us), `seconds` pass, or the node stops."""
    stopping = app.get(STOPPING)
    if stopping is None:  # an app without the node's HTTP service (unit tests)
        await ledger.final(tx_hash, seconds)
        return
    waits = {asyncio.ensure_future(ledger.final(tx_hash, seconds)), asyncio.ensure_future(stopping.wait())}
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()  # a cancelled `final` takes its waiter off the feed


def ledger_routes(ledger: Ledger) -> list[web.RouteDef]:
    async def submit(request: web.Request) -> web.Response:
        body = await read_json(request, max_bytes=max_submit_bytes(ledger.genesis.params.max_tx_bytes))
        if isinstance(body, dict) and "tx" in body:
            items, single = [body["tx"]], True
        elif isinstance(body, dict) and isinstance(body.get("txs"), list):
            items, single = body["txs"], False
        else:
            return json_error(400, 'body: {"tx": "<hex>"} or {"txs": ["<hex>", ...]}')
        if len(items) > MAX_BATCH:
            return json_error(413, f"txs: at most {MAX_BATCH} transactions per request")
        hashes: list[str] = []
        errors: list[dict[str, object]] = []
        statuses: set[int] = set()  # the HTTP statuses of the refusals (403 not allowlisted, 429 rate limited, ...)
        busy = 0
        for index, item in enumerate(items):
            where = "tx" if single else f"txs[{index}]"
            try:
                raw = bytes.fromhex(item) if isinstance(item, str) else None
            except ValueError:
                raw = None
            if raw is None:
                errors.append({"index": index, "error": f"{where}: not a hex string"})
                statuses.add(400)
                continue
            try:
                tx = ledger.submit_tx(raw)
            except MempoolFullError as exc:
                busy += 1
                errors.append({"index": index, "error": f"{where}: {exc}"})
                continue
            except TxError as exc:
                errors.append({"index": index, "error": f"{where}: {exc}", "code": exc.code})
                statuses.add(exc.http_status)
                continue
            hashes.append(tx.hash.hex())
            if index % 100 == 99:
                await asyncio.sleep(0)  # admission costs ~0.15 ms a tx: let consensus messages in between
        if hashes:
            # An acknowledgement promises the transactions survive a crash of this node (docs/API.md): answer only
            # once the mempool journal holding them is fsynced (one fsync serves every request waiting then).
            try:
                await ledger.durable()
            except LedgerError as exc:
                return web.json_response(
                    {
                        "error": f"accepted but not known to be stored, so not acknowledged ({exc}); they may still "
                        "become final: send the same transactions again (a retry is answered like a success)",
                        "unconfirmed": hashes,
                    },
                    status=503,
                )
        if errors and busy == len(errors):
            # Only "busy" refusals: a temporary condition, so 503 (retry those later) rather than a client error.
            return web.json_response(
                {"error": str(errors[0]["error"]), "rejected": errors, "hashes": hashes}, status=503
            )
        status = statuses.pop() if len(statuses) == 1 else 400
        status = status if status in KEPT_REFUSALS else 400
        if errors and single:
            return json_error(status, str(errors[0]["error"]))
        if errors:
            # Accepted transactions stay accepted; the answer says which were not and why.
            return web.json_response(
                {"error": f"{len(errors)} of {len(items)} transactions rejected", "rejected": errors, "hashes": hashes},
                status=status,
            )
        return web.json_response({"hashes": hashes} if not single else {"hash": hashes[0], "hashes": hashes})

    async def tx_status(request: web.Request) -> web.Response:
        tx_hash = _hex32(request.match_info["hash"], "hash")
        wait = wait_seconds(request.query)
        if wait is not None:
            await _until_final(ledger, request.app, tx_hash, wait)  # then answered as without `wait`
        store = ledger.store
        location = store.tx_location(tx_hash)
        if location is not None:
            height, index = location
            receipt = store.get_receipt(tx_hash)
            return web.json_response(
                {
                    "hash": tx_hash.hex(),
                    "status": "final",
                    "height": height,
                    "index": index,
                    "receipt": receipt.to_json() if receipt is not None else None,
                }
            )
        if ledger.pending(tx_hash):
            return web.json_response({"hash": tx_hash.hex(), "status": "pending"})
        return json_error(404, f"transaction {tx_hash.hex()} is neither pending nor final here")

    async def block(request: web.Request) -> web.Response:
        store = ledger.store
        text = request.match_info["height"]
        if text == "latest":
            height = store.height
        elif text.isascii() and text.isdigit() and len(text) <= 19 and int(text) <= MAX_HEIGHT:
            height = int(text)
        else:
            return json_error(400, f"height: an integer from 0 to {MAX_HEIGHT} or 'latest'")
        found = ledger.final_block(height)
        if found is None:
            return json_error(404, f"no final block at height {height} (head is {store.height})")
        return web.json_response(block_to_json(found, store.get_commit(height)))

    async def account(request: web.Request) -> web.Response:
        text = request.match_info["address"]
        try:
            address = bytes.fromhex(text)
        except ValueError:
            address = b""
        if len(address) != 20:
            return json_error(400, "address: 40 hex characters")
        return web.json_response(
            {
                "address": address.hex(),
                "nonce": ledger.nonce_of(address),
                "next_nonce": ledger.next_nonce(address),
            }
        )

    return [
        web.post("/tx", submit),
        web.get("/tx/{hash}", tx_status),
        web.get("/blocks/{height}", block),
        web.get("/accounts/{address}", account),
    ]
