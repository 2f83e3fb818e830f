"""The full node's side of the light-client protocol (docs/PROTOCOL.md, "Light client").

Every full node answers light clients from its chain store: headers with their commits (and the new validator
set where a header hands over to one), its head, a Merkle proof for any state key against its latest state root,
and the validator set of a height. The same answers are offered over libp2p (`/ehrnet/light/1.0.0`, canonical
CBOR) and over HTTP (`/light/...`, JSON with hex of the canonical bytes) for devices without libp2p.

Answers are read synchronously on the event loop between two awaits, so a proof, its value and the height it is
reported against always come from one committed state. Nothing a node serves here needs to be trusted: the
client verifies it (node/light/follower.py).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from consensus import smt
from consensus.block import Header
from consensus.chainstore import ChainStore
from consensus.errors import LedgerError
from consensus.state import validators_at
from consensus.votes import ValidatorSet
from node.light import wire
from node.light.errors import WireError
from node.service import Service
from primitives import codec

if TYPE_CHECKING:
    from node.p2p.bridge import P2PHost

log = logging.getLogger(__name__)

CACHED_HEADERS = 4096
_HTTP_STATUS = {"bad_request": 400, "not_found": 404, "too_large": 413, "unavailable": 503}


class QueryError(Exception):
    """A light request this node cannot answer; `code` is the protocol's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    @property
    def status(self) -> int:
        return _HTTP_STATUS.get(self.code, 400)


class LightQueries:
    """The answers themselves, independent of the transport. Final headers never change, so recently served
    ones are kept decoded (many devices follow the same few recent heights)."""

    def __init__(self, store: ChainStore) -> None:
        self.store = store
        self.closed = False  # set when the light service stops, just before the ledger closes the store
        self._cache: OrderedDict[int, tuple[wire.SignedHeader, int]] = OrderedDict()

    def _store(self) -> ChainStore:
        if self.closed:
            raise QueryError("unavailable", "this node is stopping")
        return self.store

    def head(self) -> wire.SignedHeader:
        store = self._store()
        return self._signed_header(store, store.height)[0]

    def headers(self, start: int, end: int) -> list[wire.SignedHeader]:
        store = self._store()
        req = wire.check_request(wire.LightRequest("headers", start=start, end=end))
        if req.start > store.height:
            raise QueryError("not_found", f"no final block at height {req.start} (head is {store.height})")
        entries: list[wire.SignedHeader] = []
        size = 0
        for height in range(req.start, min(req.end, store.height) + 1):
            entry, entry_size = self._signed_header(store, height)
            size += entry_size
            if entries and size > wire.RESPONSE_BUDGET_BYTES:
                break
            entries.append(entry)
        return entries

    def state(self, key: bytes) -> wire.StateAnswer:
        store = self._store()
        wire.check_request(wire.LightRequest("proof", key=key))
        for _ in range(3):
            head = store.head
            with store.reader() as reader:
                value, proof = reader.prove(key)
            # The ledger commits on this event loop today, so state and head always agree here; checking the
            # proof against the header it will be reported with (15 µs) keeps that true if commits ever move off
            # the loop, so an honest node never looks like a liar to its clients.
            if smt.verify_proof(head.state_root, key, value, proof):
                break
        else:
            raise QueryError("unavailable", "the state moved while the proof was read; ask again")
        if value is not None and len(value) > wire.MAX_VALUE_BYTES:
            limit = wire.MAX_VALUE_BYTES
            raise QueryError("too_large", f"the value is {len(value)} bytes; light answers carry at most {limit}")
        return wire.StateAnswer(head.height, key, value, proof)

    def validators(self, height: int) -> ValidatorSet:
        store = self._store()
        if height < 1 or height > store.height + 1:
            raise QueryError("not_found", f"validator sets are served for heights 1–{store.height + 1}")
        try:
            return validators_at(store.get_value, height)
        except ValueError as exc:
            raise QueryError("not_found", f"no validator set known for height {height}: {exc}") from exc

    def _signed_header(self, store: ChainStore, height: int) -> tuple[wire.SignedHeader, int]:
        cached = self._cache.get(height)
        if cached is not None:
            self._cache.move_to_end(height)
            return cached
        raw = store.get_block_bytes(height)
        if raw is None:
            raise QueryError("not_found", f"no final block at height {height} (head is {store.height})")
        header = Header.from_value(header_value_of_block(raw))
        commit = store.get_commit(height) if height > 0 else None
        following: ValidatorSet | None = None
        if header.next_validators_hash != header.validators_hash:
            # The state keeps the validator schedule (recent history included): give the client the new set so
            # it can check it against the header's hash. A pruned or mismatching entry is simply left out.
            try:
                candidate = validators_at(store.get_value, height + 1)
            except ValueError:
                candidate = None
            if candidate is not None and candidate.hash() == header.next_validators_hash:
                following = candidate
        entry = wire.SignedHeader(header, commit, following)
        result = (entry, len(codec.encode(entry.to_value())))
        self._cache[height] = result
        if len(self._cache) > CACHED_HEADERS:
            self._cache.popitem(last=False)
        return result


def _item_head(data: bytes, pos: int) -> tuple[int, int, int]:
    """(major type, argument, position after the head) of the CBOR item at `pos` (definite lengths only)."""
    initial = data[pos]
    major, info = initial >> 5, initial & 0x1F
    if info < 24:
        return major, info, pos + 1
    if info > 27:
        raise ValueError("indefinite or reserved CBOR length")
    size = 1 << (info - 24)
    return major, int.from_bytes(data[pos + 1 : pos + 1 + size], "big"), pos + 1 + size


def header_value_of_block(raw: bytes) -> codec.Value:
    """The header of a stored block without decoding its transactions.

    A canonical block is {"txs": [bytes, ...], "header": {...}} in that order (keys sort length-first), so the
    transactions can be skipped by their length prefixes: serving a header then costs the same for a block of
    2,000 transactions as for an empty one, and a light client cannot make a node stall by asking for headers.
    """
    try:
        major, count, pos = _item_head(raw, 0)
        major_key, length, pos = _item_head(raw, pos)
        if (major, count, major_key) != (5, 2, 3) or raw[pos : pos + length] != b"txs":
            raise ValueError("not a block map")
        major, txs, pos = _item_head(raw, pos + length)
        if major != 4:
            raise ValueError("txs is not an array")
        for _ in range(txs):
            major, length, pos = _item_head(raw, pos)
            if major != 2:
                raise ValueError("a tx is not a byte string")
            pos += length
        major_key, length, pos = _item_head(raw, pos)
        if major_key != 3 or raw[pos : pos + length] != b"header":
            raise ValueError("no header after the txs")
        return codec.decode(raw[pos + length :])
    except (ValueError, IndexError):
        block = codec.decode(raw)  # not the layout this version writes: decode it all
        if not isinstance(block, dict) or "header" not in block:
            raise QueryError("unavailable", "a stored block is malformed") from None
        return block["header"]


class LightServer(Service):
    """Serves the light protocol over libp2p (`start`) and HTTP (`routes`) from the node's chain store.

    `store` is the ledger's chain store (open from the ledger's construction until its stop). As a service it goes
    after the peering service (whose start starts the host) and after the ledger in the node's list, so it is
    stopped first: requests still arriving while the node stops are answered "unavailable", and never read a
    closed store."""

    name = "light"

    def __init__(self, host: P2PHost | None, store: ChainStore) -> None:
        self.host = host
        self.queries = LightQueries(store)
        self.malformed_requests = 0

    async def start(self) -> None:
        if self.host is None:
            return
        self.host.set_request_handler(
            wire.LIGHT_PROTOCOL,
            self._serve,
            max_request_bytes=wire.MAX_REQUEST_BYTES,
            on_oversize=lambda n: wire.encode_error("too_large", f"request of {n} bytes exceeds the limit"),
        )

    async def stop(self) -> None:
        self.queries.closed = True

    def routes(self) -> list[web.RouteDef]:
        return light_routes(self.queries)

    async def _serve(self, peer: str, request: bytes) -> bytes:
        return self.answer(request)

    def answer(self, request: bytes) -> bytes:
        """One encoded answer for one encoded request; never raises for anything a peer sends."""
        try:
            req = wire.decode_request(request)
            if req.kind == "head":
                return wire.encode_head(self.queries.head())
            if req.kind == "headers":
                return wire.encode_headers(self.queries.headers(req.start, req.end))
            if req.kind == "proof":
                return wire.encode_state(self.queries.state(req.key))
            return wire.encode_validators(req.height, self.queries.validators(req.height))
        except WireError as exc:
            self.malformed_requests += 1
            return wire.encode_error("bad_request", str(exc))
        except QueryError as exc:
            return wire.encode_error(exc.code, str(exc))
        except LedgerError as exc:  # a store fault must not take the node down with a peer's request
            log.warning("light request failed: %s", exc)
            return wire.encode_error("unavailable", f"{type(exc).__name__}: {exc}")


def _query_int(request: web.Request, name: str) -> int:
    text = request.query.get(name)
    if text is None or not text.isascii() or not text.isdigit() or len(text) > 18:
        raise QueryError("bad_request", f"{name}: a non-negative integer")
    return int(text)


def light_routes(queries: LightQueries | ChainStore) -> list[web.RouteDef]:
    """The HTTP form: GET /light/head, /light/headers?from=&to=, /light/proof?key=<hex>, /light/validators?height=.
    Errors are JSON {"error": message, "code": code} with a 4xx/503 status."""
    q = queries if isinstance(queries, LightQueries) else LightQueries(queries)

    def guarded(fn: Callable[[web.Request], dict[str, object]]) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            try:
                return web.json_response(fn(request))
            except QueryError as exc:
                return web.json_response({"error": str(exc), "code": exc.code}, status=exc.status)
            except WireError as exc:
                return web.json_response({"error": str(exc), "code": "bad_request"}, status=400)
            except LedgerError as exc:
                log.warning("light HTTP request failed: %s", exc)
                return web.json_response({"error": str(exc), "code": "unavailable"}, status=503)

        return handler

    def head(_: web.Request) -> dict[str, object]:
        return wire.signed_header_to_json(q.head())

    def headers(request: web.Request) -> dict[str, object]:
        entries = q.headers(_query_int(request, "from"), _query_int(request, "to"))
        return {"headers": [wire.signed_header_to_json(e) for e in entries]}

    def proof(request: web.Request) -> dict[str, object]:
        try:
            key = bytes.fromhex(request.query.get("key", ""))
        except ValueError:
            raise QueryError("bad_request", "key: hex of the state key") from None
        return wire.state_to_json(q.state(key))

    def validators(request: web.Request) -> dict[str, object]:
        height = _query_int(request, "height")
        return {"height": height, "validators": [k.hex() for k in q.validators(height).members]}

    return [
        web.get("/light/head", guarded(head)),
        web.get("/light/headers", guarded(headers)),
        web.get("/light/proof", guarded(proof)),
        web.get("/light/validators", guarded(validators)),
    ]
