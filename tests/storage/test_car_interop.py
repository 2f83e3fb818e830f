"""CAR v1 interop with the JavaScript IPLD stack (@ipld/car, @ipld/dag-pb, ipfs-unixfs, multiformats from npm,
pinned in tests/js/package-lock.json): a CAR that `GET /objects/{cid}?format=car` exports is read and every block
re-hashed by @ipld/car; a CAR that @ipld/car writes is imported with `ehrnet dag import` and reads back — and the
root CID the JavaScript side computes for a file equals the one ehrnet's `add` gives it.

The packages are installed with `npm ci` into tests/js/node_modules when missing (the lock file makes it
reproducible); the tests skip only when node or npm is not installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from node.cli import dag as dag_cli
from node.store.http_routes import storage_routes
from storage.address import CID
from storage.blockstore import Blockstore
from storage.car import dag_blocks
from storage.importer import CHUNK_SIZE
from storage.objects import ObjectStore

JS_DIR = Path(__file__).resolve().parent.parent / "js"
TOOL = JS_DIR / "car_tool.mjs"
OBJECTS = web.AppKey("objects", ObjectStore)


@pytest.fixture(scope="module")
def node_js() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed to check CAR files with @ipld/car (apt-get install nodejs npm)")
    if not (JS_DIR / "node_modules" / "@ipld" / "car").is_dir():
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, f"npm ci in {JS_DIR} failed:\n{done.stderr}"
    return node


def _js(node: str, *args: str) -> str:
    done = subprocess.run([node, str(TOOL), *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    objects = ObjectStore(Blockstore(tmp_path / "store"))
    app = web.Application()
    app[OBJECTS] = objects
    app.add_routes(storage_routes(objects, lambda request: None))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


def _objects(client: TestClient[web.Request, web.Application]) -> ObjectStore:
    assert client.app is not None
    return client.app[OBJECTS]


async def test_an_exported_car_passes_ipld_car(
    node_js: str, client: TestClient[web.Request, web.Application], tmp_path: Path
) -> None:
    objects = _objects(client)
    for data in (os.urandom(4 * CHUNK_SIZE + 99), b"one small leaf"):
        root = objects.add_bytes(data)
        response = await client.get(f"/objects/{root}?format=car")
        assert response.status == 200
        car = tmp_path / f"{root}.car"
        car.write_bytes(await response.read())
        seen = json.loads(_js(node_js, "verify", str(car)))
        assert seen["roots"] == [str(root)]
        assert seen["blocks"] == [str(cid) for cid, _ in dag_blocks(objects.blocks.get, [root])]


async def test_a_car_written_by_ipld_car_imports_with_the_same_cid(
    node_js: str, client: TestClient[web.Request, web.Application], tmp_path: Path
) -> None:
    data = os.urandom(2 * CHUNK_SIZE + 4321)
    source, car = tmp_path / "scan.bin", tmp_path / "scan.car"
    source.write_bytes(data)
    js_root = _js(node_js, "write", str(car), str(source)).strip()
    ours = ObjectStore(Blockstore(tmp_path / "reference")).add_bytes(data)
    assert js_root == str(ours)  # kubo's --cid-version 1 --raw-leaves --chunker size-262144, on both sides
    node = str(client.make_url("")).rstrip("/")
    assert await dag_cli.import_car(node, car, replication=1) == 0
    objects = _objects(client)
    assert [p.root for p in objects.pins()] == [CID.parse(js_root)]
    assert b"".join(objects.cat(CID.parse(js_root))) == data
