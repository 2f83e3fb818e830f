"""HTTP routes for contracts (docs/API.md, "Contracts"): deploy, ABI, read-only views, receipts, events, proofs.

Reads run on the latest final state (the chain store's head) without a transaction. Contract values travel as
DAG-JSON (bytes as {"/": {"bytes": "<base64>"}}, consensus/vm/jsonvalues.py); ledger identifiers (hashes,
addresses, keys, proofs) as lowercase hex, as in the rest of the API. Views, which may run up to max_tx_gas of
contract code, run in a worker process on one LMDB snapshot (node/views/worker.py), under a per-source gas budget
(node/views/service.py). The other handlers never await between reading the head and reading state, so on the
node's single event loop no block can be committed in between; the proof route also checks the reader's tree
root against the head it reports.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from aiohttp import web

from consensus import smt
from consensus.chainstore import ChainStore
from consensus.contract_txs import ReadOnlyLedgerStorage, contract_state_key, shared_vm
from consensus.errors import LedgerError, TxError
from consensus.event_index import EventPosition, contract_events
from consensus.execute import Receipt
from consensus.tx import decode_tx
from consensus.vm import CallError, VMError, contract_address
from consensus.vm.jsonvalues import from_json, to_json
from consensus.vm.runtime import NAME_PATTERN
from node.api.server import json_error, read_json
from node.ledger.protocol import Ledger
from node.views.service import ViewService
from node.views.worker import ViewJob, ViewUnavailable
from primitives import codec
from primitives.keys import address_of

MAX_EVENTS = 1_000
DEFAULT_EVENTS = 100
MAX_SCAN_HEIGHTS = 10_000
DEFAULT_SCAN_HEIGHTS = 1_000
MAX_STORAGE_KEY = 256


Route = Callable[[web.Request], Awaitable[web.Response]]


class _Bad(Exception):
    """A request problem: answered as JSON {"error": message} with `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _hex(text: object, what: str, sizes: tuple[int, ...] | None = None) -> bytes:
    if text is not None and not isinstance(text, str):
        raise _Bad(400, f"{what}: a hex string, not {type(text).__name__}")
    try:
        raw = bytes.fromhex((text or "").removeprefix("0x"))
    except ValueError:
        raise _Bad(400, f"{what}: not hex") from None
    if sizes is not None and len(raw) not in sizes:
        raise _Bad(400, f"{what}: {' or '.join(str(2 * s) for s in sizes)} hex characters")
    return raw


def parse_target(text: str) -> str | bytes:
    """A contract named by its 40-hex-character address or its well-known name."""
    if len(text) == 40:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    if NAME_PATTERN.fullmatch(text):
        return text
    raise _Bad(400, f"contract: {text!r} is neither a 40-hex-character address nor a contract name")


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 20) or not low <= int(text) <= high:
        raise _Bad(400, f"{name}: an integer from {low} to {high}")
    return int(text)


def receipt_json(receipt: Receipt) -> dict[str, Any]:
    """A ledger receipt for clients: contract results and event data as DAG-JSON, the rest as hex."""
    doc = receipt.to_json()
    result = receipt.result
    if isinstance(result, dict):
        address = result.get("address")
        doc["result"] = {
            "vm_status": result.get("vm_status"),
            "return": to_json(result.get("return")),
            "address": address.hex() if isinstance(address, bytes) else None,
        }
    doc["gas_used"] = receipt.gas
    doc["events"] = [_event_json(e.name, e.attrs) for e in receipt.events]
    return doc


def _event_json(name: str, attrs: dict[str, codec.Value]) -> dict[str, Any]:
    contract = attrs.get("contract")
    if isinstance(contract, bytes) and set(attrs) == {"contract", "data"}:
        return {"name": name, "contract": contract.hex(), "data": to_json(attrs["data"])}
    return {"name": name, "attrs": {k: v.hex() if isinstance(v, bytes) else to_json(v) for k, v in attrs.items()}}


def view_body_bytes(max_tx_bytes: int) -> int:
    """A view's body bound: its arguments are those a call transaction could carry (at most `max_tx_bytes` of
    CBOR), which DAG-JSON (base64 bytes, escaped text) can inflate several times over."""
    return 16 * max_tx_bytes + 1024


def contract_routes(ledger: Ledger, views: ViewService | None = None) -> list[web.RouteDef]:
    """The routes; `views` runs read-only calls (a pool of its own when not given, as in tests)."""
    vm = shared_vm()
    if views is None:
        views = ViewService(ledger.genesis.params.max_tx_gas)

    def answer(handler: Route) -> Route:
        async def wrapped(request: web.Request) -> web.Response:
            try:
                return await handler(request)
            except _Bad as exc:
                return json_error(exc.status, str(exc))

        return wrapped

    def resolve(store: ChainStore, target: str | bytes) -> bytes:
        with store.reader() as reader:
            try:
                return vm.resolve(ReadOnlyLedgerStorage(reader.get_value), target)
            except CallError as exc:
                raise _Bad(404, str(exc)) from None

    @answer
    async def deploy(request: web.Request) -> web.Response:
        body = await read_json(request, max_bytes=2 * ledger.genesis.params.max_tx_bytes + 1024)
        text = body.get("tx") if isinstance(body, dict) else None
        if not isinstance(text, str):
            raise _Bad(400, 'body: {"tx": "<hex of a signed deploy transaction>"}')
        raw = _hex(text, "tx")
        params = ledger.genesis.params
        try:
            tx = decode_tx(raw, chain_id=ledger.genesis.chain_id, max_bytes=params.max_tx_bytes)
            if tx.kind != "deploy":
                raise _Bad(400, f"tx: POST /contracts takes a deploy transaction, not {tx.kind!r}; use POST /tx")
            ledger.submit_tx(raw)
        except TxError as exc:
            raise _Bad(exc.http_status, f"tx: {exc}") from None
        try:
            await ledger.durable()  # acknowledged like POST /tx: only once it is on disk (docs/API.md)
        except LedgerError as exc:
            message = f"tx: accepted but not known to be stored, so not acknowledged ({exc}); send it again"
            raise _Bad(503, message) from None
        source = tx.body["source"]
        assert isinstance(source, str)  # the deploy body check ran at admission
        code_hash = hashlib.sha256(source.encode("utf-8", "surrogatepass")).digest()
        address = contract_address(tx.address, code_hash, tx.nonce)
        return web.json_response({"hash": tx.hash.hex(), "address": address.hex(), "name": tx.body.get("name")})

    @answer
    async def abi(request: web.Request) -> web.Response:
        store = ledger.store
        target = parse_target(request.match_info["target"])
        with store.reader() as reader:
            try:
                value = vm.abi(ReadOnlyLedgerStorage(reader.get_value), target)
            except CallError as exc:
                raise _Bad(404, str(exc)) from None
        assert isinstance(value, dict)
        address, code_hash = value["address"], value["code_hash"]
        assert isinstance(address, bytes) and isinstance(code_hash, bytes)
        doc = {**value, "address": address.hex(), "code_hash": code_hash.hex(), "height": store.height}
        return web.json_response(doc)

    @answer
    async def view(request: web.Request) -> web.Response:
        store = ledger.store
        target = parse_target(request.match_info["target"])
        body = await read_json(request, max_bytes=view_body_bytes(ledger.genesis.params.max_tx_bytes))
        if not isinstance(body, dict) or not isinstance(body.get("function"), str):
            raise _Bad(400, 'body: {"function": "<name>", "args": [...], "caller"?: "<hex public key>"}')
        function: str = body["function"]
        try:
            args = from_json(body.get("args", []))
        except VMError as exc:
            raise _Bad(400, f"args: {exc}") from None
        if not isinstance(args, list):
            raise _Bad(400, "args: a JSON array")
        caller = _hex(body["caller"], "caller", (32,)) if body.get("caller") is not None else b""
        max_gas = views.max_tx_gas
        gas = body.get("gas_limit", views.default_gas)
        if not isinstance(gas, int) or isinstance(gas, bool) or not 0 < gas <= max_gas:
            raise _Bad(400, f"gas_limit: an integer from 1 to {max_gas}")
        # Off the event loop, in a worker process reading the store's latest committed snapshot.
        job = ViewJob(str(store.path), target, function, args, caller, gas)
        try:
            answer = await views.run_view(views.source_of(request), job)
        except ViewUnavailable as exc:
            raise _Bad(503, f"view: {exc}") from None
        if isinstance(answer, float):
            retry = max(1, math.ceil(answer))
            return web.json_response(
                {"error": f"gas_limit: this source's view budget is spent; retry in {retry} s or ask for less gas"},
                status=429,
                headers={"Retry-After": str(retry)},
            )
        return web.json_response(answer.doc, status=answer.status)

    @answer
    async def receipt(request: web.Request) -> web.Response:
        store = ledger.store
        tx_hash = _hex(request.match_info["tx_hash"], "tx_hash", (32,))
        location = store.tx_location(tx_hash)
        found = store.get_receipt(tx_hash) if location is not None else None
        if location is None or found is None:
            raise _Bad(404, f"no final transaction {tx_hash.hex()} here (it may still be pending: GET /tx/<hash>)")
        return web.json_response({"height": location[0], "index": location[1], **receipt_json(found)})

    @answer
    async def events(request: web.Request) -> web.Response:
        store = ledger.store
        head = store.height
        contract = request.query.get("contract")
        address = resolve(store, parse_target(contract)) if contract else None
        to_height = _int_param(request, "to_height", head, 0, head)
        # One contract's events come from the event index, whose cost follows the answer, so the whole chain is
        # the default range; events of every contract are a scan of the receipts, bounded per request.
        default_from = 0 if address is not None else max(0, to_height - DEFAULT_SCAN_HEIGHTS + 1)
        from_height = _int_param(request, "from_height", default_from, 0, to_height)
        if address is None and to_height - from_height + 1 > MAX_SCAN_HEIGHTS:
            raise _Bad(400, f"from_height..to_height: at most {MAX_SCAN_HEIGHTS} heights per request without contract")
        limit = _int_param(request, "limit", DEFAULT_EVENTS, 1, MAX_EVENTS)
        name = request.query.get("name")
        patient_text = request.query.get("patient")
        patient: bytes | None = None
        if patient_text is not None:
            raw = _hex(patient_text, "patient", (20, 32))
            patient = address_of(raw) if len(raw) == 32 else raw  # a uid, or the registration public key
        if address is not None:
            before = _position_param(request.query.get("before"))
            indexed, more = store.events(
                address, name, patient, from_height=from_height, to_height=to_height, before=before, limit=limit
            )
            events = [
                {"height": position[0], "tx_hash": tx_hash.hex(), "contract": event.contract.hex(),
                 "name": event.name, "data": to_json(event.data)}
                for position, tx_hash, event in indexed
            ]  # fmt: skip
            doc: dict[str, Any] = {"events": events, "from_height": from_height, "to_height": to_height}
            next_before = None if more is None else ".".join(map(str, more))
            return web.json_response({**doc, "complete": more is None, "next_before": next_before})
        found: list[dict[str, Any]] = []
        complete = True
        for height, tx_hash, event_name, event_contract, data in _contract_events(store, to_height, from_height):
            if (address is not None and event_contract != address) or (name is not None and event_name != name):
                continue
            if patient is not None and not (isinstance(data, dict) and data.get("patient") == patient):
                continue
            if len(found) == limit:
                complete = False
                break
            entry = {"height": height, "tx_hash": tx_hash.hex(), "contract": event_contract.hex(), "name": event_name}
            found.append({**entry, "data": to_json(data)})
        return web.json_response(
            {"events": found, "from_height": from_height, "to_height": to_height, "complete": complete}
        )

    @answer
    async def proof(request: web.Request) -> web.Response:
        store = ledger.store
        contract = request.query.get("contract")
        if not contract:
            raise _Bad(400, "contract: required (a contract name or 40-hex-character address)")
        key = _hex(request.query.get("key"), "key")
        if not 0 < len(key) <= MAX_STORAGE_KEY:
            raise _Bad(400, f"key: 1 to {MAX_STORAGE_KEY} bytes in hex (the contract's storage key)")
        address = resolve(store, parse_target(contract))
        state_key = contract_state_key(address, key)
        head = store.head
        with store.reader() as reader:
            if smt.root_of(reader) != head.state_root:
                raise _Bad(503, "a block was committed while reading; retry")
            value, found = reader.prove(state_key)
        doc = {
            "height": head.height,
            "block_hash": head.hash.hex(),
            "state_root": head.state_root.hex(),
            "contract": address.hex(),
            "key": key.hex(),
            "state_key": state_key.hex(),
            "value": None if value is None else value.hex(),
            "decoded": None if value is None else to_json(codec.decode(value)),
            "proof": codec.encode(found.to_value()).hex(),
        }
        return web.json_response(doc)

    return [
        web.post("/contracts", deploy),
        web.get("/contracts/{target}/abi", abi),
        web.post("/contracts/{target}/call", view),
        web.get("/receipts/{tx_hash}", receipt),
        web.get("/events", events),
        web.get("/state/proof", proof),
    ]


def _position_param(text: str | None) -> EventPosition | None:
    """`before=<height>.<tx index>.<event index>`, as an answer's `next_before` gives it."""
    if text is None:
        return None
    parts = text.split(".")
    if len(parts) != 3 or not all(p.isdigit() and len(p) <= 20 for p in parts):
        raise _Bad(400, "before: <height>.<tx index>.<event index>, as `next_before` gives it")
    height, tx_index, event_index = (int(p) for p in parts)
    if height >= 1 << 64 or tx_index >= 1 << 32 or event_index >= 1 << 16:
        raise _Bad(400, "before: a position out of range")
    return height, tx_index, event_index


def _contract_events(
    store: ChainStore, newest: int, oldest: int
) -> Iterator[tuple[int, bytes, str, bytes, codec.Value]]:
    """(height, tx hash, name, contract, data) of every contract event, newest first (reverse chain order)."""
    for height in range(newest, oldest - 1, -1):
        for receipt in reversed(store.get_receipts(height)):
            for _, event in reversed(list(contract_events(receipt))):
                yield height, receipt.tx_hash, event.name, event.contract, event.data
