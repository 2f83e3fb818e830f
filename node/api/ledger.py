"""HTTP routes of the ledger (docs/API.md, "Ledger"): submit transactions, follow them, read blocks."""

from __future__ import annotations

import asyncio

from aiohttp import web

from consensus.block import block_to_json
from consensus.errors import LedgerError, MempoolFullError, TxError, TxNotAllowlistedError, TxRateLimitError
from node.api.server import json_error, read_json
from node.ledger.service import LedgerService

MAX_BATCH = 5000
MAX_HEIGHT = (1 << 63) - 1  # heights are stored as 8-byte keys; a larger number is no height at all


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


SENDER_REFUSALS = frozenset({TxNotAllowlistedError.http_status, TxRateLimitError.http_status})


def ledger_routes(ledger: LedgerService) -> list[web.RouteDef]:
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
        # A refusal of the sender rather than of the transaction keeps its own status — 403 for a sender an allowlist
        # chain does not allow, 429 for one over its per-sender limits; anything else, or a mix, is a plain 400.
        status = statuses.pop() if len(statuses) == 1 else 400
        status = status if status in SENDER_REFUSALS else 400
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
        store, mempool = ledger.store, ledger.mempool
        assert store is not None and mempool is not None
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
        if tx_hash in mempool:
            return web.json_response({"hash": tx_hash.hex(), "status": "pending"})
        return json_error(404, f"transaction {tx_hash.hex()} is neither pending nor final here")

    async def block(request: web.Request) -> web.Response:
        store = ledger.store
        assert store is not None
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
        assert ledger.mempool is not None
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
