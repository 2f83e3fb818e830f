"""Block-level HTTP for the store: an object as a CAR v1 or as one raw block, and CAR import.

`GET /objects/{cid}` answers the file's bytes unless the client asks for another response format, as the IPFS
trustless-gateway spec does (https://specs.ipfs.tech/http-gateways/trustless-gateway/): `?format=car` or
`Accept: application/vnd.ipld.car` gives the CAR v1 of the DAG (storage/car.py: header with the root, then
every block depth-first, each once), `?format=raw` or `Accept: application/vnd.ipld.raw` the single block's
bytes. `?format=` takes precedence over `Accept`. A format this node does not serve (`?format=tar`, a CAR
version 2, `application/vnd.ipld.dag-json`…) is a 406 naming what is served, never the file bytes under a
content type the client did not ask for. So standard IPFS tooling can fetch, verify and archive ehrnet objects.

`POST /dag/import` takes a CAR v1 body, streamed: every block is verified against its CID as it arrives and
written through one `BlockWriter`; at the end the store checks each root's DAG is complete and pins the roots
(then announces and places them like an add).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from storage.address import CID
from storage.blockstore import BlockWriter
from storage.car import CarDecoder, car_sections
from storage.errors import BlockNotFoundError, CarError, NotAcceptableError, StorageError
from storage.importer import Buffer
from storage.objects import BATCH_BYTES, ObjectStore

CAR_TYPE = "application/vnd.ipld.car"
RAW_TYPE = "application/vnd.ipld.raw"
CAR_RESPONSE_TYPE = f"{CAR_TYPE}; version=1; order=dfs; dups=n"
SERVED = "format=car (CAR v1 of the DAG), format=raw (the block alone), or no format for the file's bytes"
IMPORT_CHUNK = 256 << 10

FetchRemote = Callable[[CID], AsyncIterator[bytes]]
OnAdded = Callable[[CID, int], Awaitable[int]]


def _media_ranges(accept: str) -> list[tuple[str, dict[str, str]]]:
    ranges = []
    for item in accept.split(","):
        kind, *params = (part.strip() for part in item.split(";"))
        values = dict(p.split("=", 1) for p in params if "=" in p)
        if kind and values.get("q", "1").strip() not in ("0", "0.0", "0.00", "0.000"):
            ranges.append((kind.lower(), {k.strip().lower(): v.strip().lower() for k, v in values.items()}))
    return ranges


def requested_format(query_format: str | None, accept: str) -> str:
    """ "file", "car" or "raw" for a request's `?format=` and `Accept`; `NotAcceptableError` for what is not
    served."""
    if query_format is not None:
        if query_format in ("car", "raw"):
            return query_format
        raise NotAcceptableError(f"format={query_format!r} is not served; this node serves {SERVED}")
    refused = []
    for kind, params in _media_ranges(accept):
        if kind == CAR_TYPE:
            if params.get("version", "1") == "1":
                return "car"
            refused.append(f"{kind} version {params['version']}")
        elif kind == RAW_TYPE:
            return "raw"
        elif kind.startswith("application/vnd.ipld."):
            refused.append(kind)
        elif kind in ("*/*", "application/*", "application/octet-stream"):
            return "file"
    if refused:
        raise NotAcceptableError(f"{', '.join(refused)} is not served; this node serves {SERVED}")
    return "file"


async def _make_local(objects: ObjectStore, root: CID, fetch_remote: FetchRemote | None) -> None:
    """Fetch the DAG from its providers when it is not here (each block verified, kept as unpinned cache)."""
    if objects.has(root):
        return
    if fetch_remote is None:
        raise BlockNotFoundError(f"{root} is not stored here")
    async for _ in fetch_remote(root):
        pass


async def serve_block_format(
    request: web.Request, objects: ObjectStore, root: CID, fmt: str, fetch_remote: FetchRemote | None
) -> web.StreamResponse:
    """The object as a CAR v1 (`fmt` "car") or as its root block (`fmt` "raw")."""
    await _make_local(objects, root, fetch_remote)
    if fmt == "raw":
        return web.Response(body=objects.blocks.get(root), headers={"Content-Type": RAW_TYPE})
    sections = car_sections(objects.blocks.get, [root])
    header = next(sections)
    first = next(sections, b"")  # the root block: a missing or corrupt one fails before any byte is sent
    response = web.StreamResponse(
        headers={
            "Content-Type": CAR_RESPONSE_TYPE,
            "Content-Disposition": f'attachment; filename="{root}.car"',
            "X-Content-Type-Options": "nosniff",
        }
    )
    await response.prepare(request)
    try:
        await response.write(header + first)
        for section in sections:
            await response.write(section)
    except StorageError:
        # Headers are gone: cutting the connection is the only honest signal (the CAR is visibly truncated).
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response


def _replication(request: web.Request, default: int) -> int:
    text = request.query.get("replication", str(default))
    if not (text.isascii() and text.isdigit() and len(text) <= 2) or not 1 <= int(text) <= 64:
        raise ValueError("replication must be an integer from 1 to 64")
    return int(text)


def import_handler(
    objects: ObjectStore, on_added: OnAdded | None, default_replication: int
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def dag_import(request: web.Request) -> web.StreamResponse:
        replication = _replication(request, default_replication)
        decoder = CarDecoder()
        writer = objects.blocks.writer()
        with objects.protected() as live:  # GC must not take what is being imported before the pins exist
            try:
                batch: list[tuple[CID, Buffer]] = []
                size = 0
                async for chunk in request.content.iter_chunked(IMPORT_CHUNK):
                    for block in decoder.feed(chunk):
                        live.add(block.cid)
                        batch.append((block.cid, block.data))
                        size += len(block.data)
                    if size >= BATCH_BYTES:
                        await asyncio.to_thread(writer.write, batch)
                        batch, size = [], 0
                roots = decoder.finish()
                await asyncio.to_thread(_write_and_commit, writer, batch)
            finally:
                writer.abort()  # a no-op after the commit; a bad CAR leaves only pack garbage for GC
            for root in roots:
                missing = objects.missing(root)
                if missing:
                    raise CarError(f"the CAR lacks {len(missing)} block(s) under root {root}, e.g. {missing[0]}")
            for root in roots:
                objects.pin(root, replication)
        holders = [await on_added(root, replication) if on_added is not None else 1 for root in roots]
        return web.json_response(
            {
                "roots": [str(root) for root in roots],
                "blocks": decoder.blocks,
                "replication": replication,
                "holders": min(holders),
            }
        )

    return dag_import


def _write_and_commit(writer: BlockWriter, batch: list[tuple[CID, Buffer]]) -> None:
    writer.write(batch)
    writer.commit()
