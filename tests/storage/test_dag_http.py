"""`GET /objects/{cid}` in the block formats (`?format=car|raw`, `Accept: application/vnd.ipld.car|raw`), 406
for what is not served, `POST /dag/import`, and `ehrnet dag export | import` against a real aiohttp server."""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from node.cli import dag as dag_cli
from node.store.dag_routes import CAR_RESPONSE_TYPE, RAW_TYPE
from node.store.http_routes import storage_routes
from storage.address import CID, RAW
from storage.blockstore import Blockstore
from storage.car import CarDecoder, car_sections, encode_block, encode_header
from storage.importer import CHUNK_SIZE, Importer
from storage.objects import ObjectStore

OBJECTS = web.AppKey("objects", ObjectStore)
DATA = os.urandom(3 * CHUNK_SIZE + 1234)


def _import(data: bytes) -> tuple[CID, dict[CID, bytes]]:
    importer = Importer()
    blocks = importer.feed(data)
    root, rest = importer.finish()
    return root, {b.cid: b.data for b in [*blocks, *rest]}


ROOT, BLOCKS = _import(DATA)
CAR = b"".join(car_sections(BLOCKS.__getitem__, [ROOT]))


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    objects = ObjectStore(Blockstore(tmp_path))
    app = web.Application()
    app[OBJECTS] = objects
    app.add_routes(storage_routes(objects, lambda request: None))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


def _objects(client: TestClient[web.Request, web.Application]) -> ObjectStore:
    assert client.app is not None
    return client.app[OBJECTS]


async def test_car_export_by_query_and_by_accept(client: TestClient[web.Request, web.Application]) -> None:
    assert _objects(client).add_bytes(DATA) == ROOT
    by_query = await client.get(f"/objects/{ROOT}?format=car")
    assert by_query.status == 200 and by_query.headers["Content-Type"] == CAR_RESPONSE_TYPE
    assert await by_query.read() == CAR
    by_accept = await client.get(f"/objects/{ROOT}", headers={"Accept": "application/vnd.ipld.car;version=1"})
    assert by_accept.status == 200 and await by_accept.read() == CAR
    decoder = CarDecoder()
    assert next(b.cid for b in decoder.feed(CAR)) == ROOT and decoder.finish() == [ROOT]
    assert decoder.blocks == len(BLOCKS)
    plain = await client.get(f"/objects/{ROOT}", headers={"Accept": "text/html,*/*;q=0.8"})
    assert plain.headers["Content-Type"] == "application/octet-stream" and await plain.read() == DATA


async def test_raw_block(client: TestClient[web.Request, web.Application]) -> None:
    _objects(client).add_bytes(DATA)
    for response in (
        await client.get(f"/objects/{ROOT}?format=raw"),
        await client.get(f"/objects/{ROOT}", headers={"Accept": RAW_TYPE}),
    ):
        assert response.status == 200 and response.headers["Content-Type"] == RAW_TYPE
        assert await response.read() == BLOCKS[ROOT]  # the dag-pb root itself, not the file


@pytest.mark.parametrize(
    ("query", "accept", "named"),
    [
        ("?format=tar", "", "format='tar'"),
        ("?format=dag-json", RAW_TYPE, "format='dag-json'"),  # the query wins over Accept
        ("", "application/vnd.ipld.car; version=2", "version 2"),
        ("", "application/vnd.ipld.dag-json", "application/vnd.ipld.dag-json"),
    ],
)
async def test_formats_not_served_are_406_with_a_message(
    client: TestClient[web.Request, web.Application], query: str, accept: str, named: str
) -> None:
    _objects(client).add_bytes(DATA)
    response = await client.get(f"/objects/{ROOT}{query}", headers={"Accept": accept} if accept else {})
    assert response.status == 406
    message = (await response.json())["error"]
    assert named in message and "format=car" in message


async def test_missing_object_in_a_block_format_is_404(client: TestClient[web.Request, web.Application]) -> None:
    assert (await client.get(f"/objects/{ROOT}?format=car")).status == 404


async def test_import_verifies_stores_and_pins(client: TestClient[web.Request, web.Application]) -> None:
    response = await client.post("/dag/import?replication=1", data=CAR)
    assert response.status == 200
    assert await response.json() == {"roots": [str(ROOT)], "blocks": len(BLOCKS), "replication": 1, "holders": 1}
    objects = _objects(client)
    assert b"".join(objects.cat(ROOT)) == DATA and [p.root for p in objects.pins()] == [ROOT]
    assert objects.gc().removed_blocks == 0


async def test_bad_cars_are_refused_and_leave_nothing_pinned(client: TestClient[web.Request, web.Application]) -> None:
    leaf = next(cid for cid in BLOCKS if cid.codec == RAW)
    tampered = encode_header([ROOT]) + b"".join(
        encode_block(cid, data if cid != leaf else b"tampered" + data[8:]) for cid, data in BLOCKS.items()
    )
    incomplete = encode_header([ROOT]) + b"".join(encode_block(c, d) for c, d in BLOCKS.items() if c != leaf)
    for body, message in (
        (tampered, "does not match"),
        (incomplete, "lacks 1 block(s) under root"),
        (CAR[:-10], "ends inside a section"),
        (b"not a car at all", "ends inside a section at byte 0"),  # "n" reads as a 110-byte header
        (b"\x05hello", "CAR header is not CBOR"),
        (b"", "empty input"),
    ):
        response = await client.post("/dag/import", data=body)
        assert response.status == 400, message
        assert message in (await response.json())["error"]
    objects = _objects(client)
    assert objects.pins() == []
    objects.gc()
    assert objects.blocks.stats() == (0, 0)  # what a refused import wrote was only unpinned garbage


async def test_cli_export_and_import(client: TestClient[web.Request, web.Application], tmp_path: Path) -> None:
    node = str(client.make_url("")).rstrip("/")
    _objects(client).add_bytes(DATA)
    sink = io.BytesIO()
    assert await dag_cli.export_car(node, str(ROOT), sink) == 0 and sink.getvalue() == CAR
    assert await dag_cli.export_car(node, "not-a-cid", io.BytesIO()) == 1
    car = tmp_path / "record.car"
    car.write_bytes(CAR)
    _objects(client).unpin(ROOT)
    _objects(client).gc()
    printed = io.StringIO()
    assert await dag_cli.import_car(node, car, replication=1, out=printed) == 0
    assert printed.getvalue() == f"{ROOT}\n"
    assert b"".join(_objects(client).cat(ROOT)) == DATA
    (tmp_path / "junk.car").write_bytes(b"\x05hello")
    assert await dag_cli.import_car(node, tmp_path / "junk.car") == 1
    assert await dag_cli.import_car(node, tmp_path / "absent.car") == 2
    assert await dag_cli.export_car("http://127.0.0.1:9", str(ROOT), io.BytesIO()) == 2
