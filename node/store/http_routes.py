"""HTTP endpoints of the content store, as an aiohttp route factory the node mounts on its API app.

    POST   /objects[?pin=true&replication=2]  body: the file, streamed       -> 200 {"cid": ..., "replication": r,
                                               "holders": n} once min(r, storage nodes) nodes hold it (or 30 s)
    GET    /objects/{cid}                      the file, streamed (Content-Length set; fetched from peers when
                                               not local and the node supplied `fetch_remote`); ?format=car or
                                               Accept: application/vnd.ipld.car -> CAR v1, ?format=raw or
                                               Accept: application/vnd.ipld.raw -> the block (node/store/dag_routes.py)
    POST   /dag/import[?replication=2]         body: a CAR v1 -> {"roots": [...], "blocks": n, "replication": r,
                                               "holders": n} (every block verified; the roots pinned)
    GET    /providers/{cid}                    -> {"providers": [{"id": base58 peer ID, "addrs": [...]}]}
    POST   /pins/{cid}[?replication=2]         operator -> {"cid": ..., "replication": r, "holders": n} (fetched
                                               from peers first when not local; then placed like an add)
    DELETE /pins/{cid}                         operator -> {"cid": ...}
    GET    /pins                               operator -> {"pins": [{"cid": ..., "replication": r}]}
    POST   /gc                                 operator -> {"removed_blocks": n, "freed_bytes": n,
                                               "compacted_bytes": n}

Errors are JSON {"error": message} with 400 (bad CID, parameter or CAR), 404 (unknown object or pin), 406 (a
response format not served), 507 (store full) or 502 (peers served bad data). Backpressure: uploads are read a
chunk at a time only as fast as the store commits them; downloads write a leaf at a time and wait for the socket
to drain.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import base58
from aiohttp import web

from node.store.dag_routes import import_handler, requested_format, serve_block_format
from storage.address import CID, RAW
from storage.dag import decode_file_node
from storage.dht.keyspace import Contact
from storage.errors import (
    BlockHashMismatchError,
    BlockNotFoundError,
    CarError,
    InvalidCidError,
    MalformedNodeError,
    NotAcceptableError,
    NotPinnedError,
    StorageError,
    StoreFullError,
)
from storage.objects import ObjectStore
from storage.placement import DEFAULT_REPLICATION

log = logging.getLogger(__name__)

UPLOAD_CHUNK = 256 << 10
RequireOperator = Callable[[web.Request], None]
FetchRemote = Callable[[CID], AsyncIterator[bytes]]
FindProviders = Callable[[CID], Awaitable[Sequence[Contact]]]
OnAdded = Callable[[CID, int], Awaitable[int]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_STATUS: list[tuple[type[Exception], int]] = [
    (InvalidCidError, 400),
    (CarError, 400),
    (NotAcceptableError, 406),
    (BlockNotFoundError, 404),
    (NotPinnedError, 404),
    (StoreFullError, 507),
    (BlockHashMismatchError, 502),
    (MalformedNodeError, 502),
    (StorageError, 500),
    (ValueError, 400),
]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _json_errors(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except (StorageError, ValueError) as exc:
            status = next(code for kind, code in _STATUS if isinstance(exc, kind))
            return _error(status, str(exc))

    return wrapped


def _cid(request: web.Request) -> CID:
    return CID.parse(request.match_info["cid"])


def _replication(request: web.Request) -> int:
    text = request.query.get("replication", str(DEFAULT_REPLICATION))
    if not (text.isascii() and text.isdigit() and len(text) <= 2) or not 1 <= int(text) <= 64:
        raise ValueError("replication must be an integer from 1 to 64")
    return int(text)


def _file_size(objects: ObjectStore, root: CID) -> int:
    block = objects.blocks.get(root)
    return len(block) if root.codec == RAW else decode_file_node(block)[1].filesize


def storage_routes(
    objects: ObjectStore,
    require_operator: RequireOperator,
    fetch_remote: FetchRemote | None = None,
    find_providers: FindProviders | None = None,
    on_added: OnAdded | None = None,
) -> list[web.RouteDef]:
    """Routes for the store. `require_operator` raises `web.HTTPUnauthorized` unless the request carries the
    operator token; `fetch_remote` streams a file from peers; `find_providers` asks the DHT; `on_added` runs
    after an upload is committed (the node announces itself as provider, places the copies and returns how many
    nodes hold the object once they do)."""

    @_json_errors
    async def add(request: web.Request) -> web.StreamResponse:
        pin = request.query.get("pin", "true").lower() not in ("false", "0", "no")
        replication = _replication(request)
        root = await objects.add_stream(request.content.iter_chunked(UPLOAD_CHUNK), pin=pin, replication=replication)
        if not pin:  # an unpinned add is a cache entry: nothing to announce or replicate
            return web.json_response({"cid": str(root)})
        holders = await on_added(root, replication) if on_added is not None else 1
        return web.json_response({"cid": str(root), "replication": replication, "holders": holders})

    @_json_errors
    async def get(request: web.Request) -> web.StreamResponse:
        root = _cid(request)
        fmt = requested_format(request.query.get("format"), request.headers.get("Accept", ""))
        if fmt != "file":
            return await serve_block_format(request, objects, root, fmt, fetch_remote)
        if objects.has(root):
            pieces: AsyncIterator[bytes] = objects.cat_stream(root)
            size: int | None = _file_size(objects, root)
        elif fetch_remote is not None:
            pieces, size = fetch_remote(root), None
        else:
            return _error(404, f"{root} is not stored here")
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        if size is not None:
            response.content_length = size  # lets the client notice a transfer cut short
        first = await anext(pieces, b"")  # fail with a clean 4xx/5xx before any byte is sent
        await response.prepare(request)
        try:
            await response.write(first)
            async for piece in pieces:
                await response.write(piece)
        except StorageError as exc:
            # Headers are gone: the only honest signal left is to cut the connection short.
            log.warning("aborting download of %s: %s", root, exc)
            if request.transport is not None:
                request.transport.close()
            return response
        await response.write_eof()
        return response

    @_json_errors
    async def providers(request: web.Request) -> web.StreamResponse:
        root = _cid(request)
        if find_providers is None:
            return _error(404, "this node has no DHT")
        found = await find_providers(root)
        listed = [{"id": base58.b58encode(p.peer_id).decode(), "addrs": list(p.addrs)} for p in found]
        return web.json_response({"cid": str(root), "providers": listed})

    @_json_errors
    async def pin_add(request: web.Request) -> web.StreamResponse:
        require_operator(request)
        root, replication = _cid(request), _replication(request)
        if not objects.has(root) and fetch_remote is not None:
            async for _ in fetch_remote(root):  # as `ipfs pin add`: fetch (every block verified), then pin
                pass
        record = objects.pin(root, replication)  # no await since the fetch ended: no GC in between
        holders = await on_added(root, replication) if on_added is not None else 1
        return web.json_response({"cid": str(record.root), "replication": record.replication, "holders": holders})

    @_json_errors
    async def pin_rm(request: web.Request) -> web.StreamResponse:
        require_operator(request)
        root = _cid(request)
        objects.unpin(root)
        return web.json_response({"cid": str(root)})

    @_json_errors
    async def pin_ls(request: web.Request) -> web.StreamResponse:
        require_operator(request)
        pins = [{"cid": str(p.root), "replication": p.replication} for p in objects.pins()]
        return web.json_response({"pins": pins}, dumps=json.dumps)

    @_json_errors
    async def gc(request: web.Request) -> web.StreamResponse:
        require_operator(request)
        report = objects.gc()
        return web.json_response(
            {
                "removed_blocks": report.removed_blocks,
                "freed_bytes": report.freed_bytes,
                "compacted_bytes": report.compacted_bytes,
            }
        )

    return [
        web.post("/objects", add),
        web.get("/objects/{cid}", get),
        web.get("/providers/{cid}", providers),
        web.post("/pins/{cid}", pin_add),
        web.delete("/pins/{cid}", pin_rm),
        web.get("/pins", pin_ls),
        web.post("/gc", gc),
        web.post("/dag/import", _json_errors(import_handler(objects, on_added, DEFAULT_REPLICATION))),
    ]
