from __future__ import annotations

import argparse
import io
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from node.cli import storage as cli
from node.store.http_routes import storage_routes
from storage.address import CID
from storage.blockstore import Blockstore
from storage.dht.keyspace import Contact
from storage.errors import BlockHashMismatchError
from storage.importer import CHUNK_SIZE, import_bytes
from storage.objects import ObjectStore

TOKEN = "s3cret"
DATA = bytes(i * 13 % 256 for i in range(2 * CHUNK_SIZE + 777))


def _require_operator(request: web.Request) -> None:
    if request.headers.get("Authorization") != f"Bearer {TOKEN}":
        raise web.HTTPUnauthorized(text='{"error": "operator token required"}', content_type="application/json")


REMOTE_DATA = b"fetched from a peer " * 1000
REMOTE_CID = import_bytes(REMOTE_DATA)[0]
EVIL_CID = CID.parse("bafkreigks6arfsq3xxfpvqrrwonchxcnu6do76auprhhfomao6c273sixm")


async def _fetch_remote(cid: CID) -> AsyncIterator[bytes]:
    if cid == EVIL_CID:
        raise BlockHashMismatchError("every provider sent bad blocks")
    yield REMOTE_DATA[:5000]
    yield REMOTE_DATA[5000:]


async def _find_providers(cid: CID) -> Sequence[Contact]:
    return [Contact(b"\x00\x24\x08\x01", ("/ip4/127.0.0.1/tcp/4001",))]


ADDED = web.AppKey("added", list[tuple[CID, int]])
OBJECTS = web.AppKey("objects", ObjectStore)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    objects = ObjectStore(Blockstore(tmp_path))
    added: list[tuple[CID, int]] = []

    async def on_added(cid: CID, replication: int) -> int:
        added.append((cid, replication))
        return 1  # this node alone holds it: no peer took a copy

    app = web.Application()
    app[ADDED] = added
    app[OBJECTS] = objects
    app.add_routes(storage_routes(objects, _require_operator, _fetch_remote, _find_providers, on_added))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), 100_000):
        yield data[i : i + 100_000]


async def test_upload_then_download_streams(client: TestClient[web.Request, web.Application]) -> None:
    response = await client.post("/objects?replication=2", data=_chunks(DATA))
    assert response.status == 200
    answer = await response.json()
    cid = answer["cid"]
    assert answer == {"cid": str(import_bytes(DATA)[0]), "replication": 2, "holders": 1}
    assert client.app is not None and client.app[ADDED] == [(CID.parse(cid), 2)]
    response = await client.get(f"/objects/{cid}")
    assert response.status == 200 and response.content_length == len(DATA)
    assert await response.read() == DATA


async def test_download_falls_back_to_the_network(client: TestClient[web.Request, web.Application]) -> None:
    response = await client.get(f"/objects/{REMOTE_CID}")
    assert response.status == 200 and await response.read() == REMOTE_DATA
    response = await client.get(f"/objects/{EVIL_CID}")
    assert response.status == 502 and "bad blocks" in (await response.json())["error"]


async def test_bad_input_gets_json_4xx(client: TestClient[web.Request, web.Application]) -> None:
    response = await client.get("/objects/not-a-cid")
    assert response.status == 400 and "not a CID" in (await response.json())["error"]
    response = await client.post("/objects?replication=zero", data=b"x")
    assert response.status == 400 and "replication" in (await response.json())["error"]
    response = await client.post("/pins/bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", headers=AUTH)
    assert response.status == 404


async def test_operator_endpoints_refuse_without_token(client: TestClient[web.Request, web.Application]) -> None:
    cid = (await (await client.post("/objects", data=b"hello")).json())["cid"]
    for method, path in (("POST", f"/pins/{cid}"), ("DELETE", f"/pins/{cid}"), ("GET", "/pins"), ("POST", "/gc")):
        response = await client.request(method, path)
        assert response.status == 401, (method, path)
        response = await client.request(method, path, headers={"Authorization": "Bearer wrong"})
        assert response.status == 401, (method, path)


async def test_pins_and_gc(client: TestClient[web.Request, web.Application]) -> None:
    kept = (await (await client.post("/objects", data=b"keep me")).json())["cid"]
    loose = (await (await client.post("/objects?pin=false", data=b"let me go")).json())["cid"]
    pins = await (await client.get("/pins", headers=AUTH)).json()
    assert pins == {"pins": [{"cid": kept, "replication": 2}]}  # the default: two copies
    gc = await (await client.post("/gc", headers=AUTH)).json()
    assert gc == {"removed_blocks": 1, "freed_bytes": len(b"let me go"), "compacted_bytes": 0}
    assert client.app is not None and not client.app[OBJECTS].has(CID.parse(loose))
    response = await client.delete(f"/pins/{kept}", headers=AUTH)
    assert response.status == 200
    assert (await client.delete(f"/pins/{kept}", headers=AUTH)).status == 404
    response = await client.post(f"/pins/{kept}?replication=3", headers=AUTH)
    assert await response.json() == {"cid": kept, "replication": 3, "holders": 1}


async def test_providers(client: TestClient[web.Request, web.Application]) -> None:
    body = await (await client.get(f"/providers/{REMOTE_CID}")).json()
    assert body["providers"] == [{"id": "1D6wr", "addrs": ["/ip4/127.0.0.1/tcp/4001"]}]


async def test_cli_add_cat_pin_gc(client: TestClient[web.Request, web.Application], tmp_path: Path) -> None:
    node = str(client.make_url("")).rstrip("/")
    source = tmp_path / "scan.bin"
    source.write_bytes(DATA)
    printed = io.StringIO()
    assert await cli.add_file(node, source, replication=2, out=printed) == 0
    cid = printed.getvalue().strip()
    sink = io.BytesIO()
    assert await cli.cat_file(node, cid, sink) == 0 and sink.getvalue() == DATA
    listing = io.StringIO()
    assert await cli.pin_command(node, TOKEN, "ls", None, out=listing) == 0
    assert listing.getvalue() == f"{cid} replication=2\n"
    assert await cli.pin_command(node, "wrong", "rm", cid) == 1
    assert await cli.pin_command(node, TOKEN, "rm", cid, out=io.StringIO()) == 0
    report = io.StringIO()
    assert await cli.gc_command(node, TOKEN, out=report) == 0 and report.getvalue().startswith(
        "removed 3 blocks"
    )  # 2 equal leaves
    assert await cli.cat_file(node, "garbage", io.BytesIO()) == 1
    assert await cli.add_file(node, tmp_path / "missing.bin") == 2
    assert await cli.cat_file("http://127.0.0.1:9", cid, io.BytesIO()) == 2


def test_register_wires_handlers() -> None:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["pin", "add", "bafy", "--node", "http://x:1", "--token-file", "t", "--replication", "2"])
    assert args.func is cli.run_pin and args.replication == 2
    args = parser.parse_args(["add", "f.bin", "--node", "http://x:1"])
    assert args.func is cli.run_add and args.replication is None  # the node's default applies
    assert parser.parse_args(["cat", "c", "--node", "http://n:1"]).func is cli.run_cat
    assert parser.parse_args(["gc", "--node", "http://n:1", "--token-file", "t"]).func is cli.run_gc


async def test_an_add_defaults_to_two_copies_and_the_cli_warns_when_fewer_are_held(
    client: TestClient[web.Request, web.Application], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    node = str(client.make_url("")).rstrip("/")
    source = tmp_path / "record.bin"
    source.write_bytes(b"an EHR's ciphertext")
    printed = io.StringIO()
    assert await cli.add_file(node, source, out=printed) == 0
    assert client.app is not None and client.app[ADDED] == [(CID.parse(printed.getvalue().strip()), 2)]
    assert "warning: 1 of 2 copies confirmed" in capsys.readouterr().err
    assert await cli.add_file(node, source, replication=1, out=io.StringIO()) == 0
    assert capsys.readouterr().err == ""
