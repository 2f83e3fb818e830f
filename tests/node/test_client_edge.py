"""The one client edge (docs/API.md, "Clients"): only node/client/ talks HTTP to a node, and its standard-library
path stays light enough for a device (importing aiohttp alone peaks at ~33 MB; the light client fits in 30 MB)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_the_standard_library_client_imports_no_aiohttp() -> None:
    loaded = _modules_after(
        "import node.client, node.client.stdlib\n"
        "from node.client import AsyncNodeClient, NodeClient\n"
        "from node.client.stdlib import ThreadedTransport\n"
        "NodeClient.connect('http://127.0.0.1:9')\n"
        "AsyncNodeClient(ThreadedTransport('http://127.0.0.1:9'))"
    )
    assert "node.client.client" in loaded
    assert not {m for m in loaded if m == "aiohttp" or m.startswith(("aiohttp.", "libp2p", "trio"))}


def test_the_light_clients_http_source_imports_no_aiohttp() -> None:
    loaded = _modules_after("from node.light.sources import HttpSource\nHttpSource('http://127.0.0.1:9')")
    assert "node.client.stdlib" in loaded
    assert not {m for m in loaded if m == "aiohttp" or m.startswith(("aiohttp.", "libp2p", "trio"))}


# Where the repository's own code lives (tests may speak raw HTTP: they test the API itself, the fuzzers above all).
CODE_ROOTS = ("node", "bench", "storage", "offload", "consensus", "primitives")
CLIENT_PACKAGE = "node/client/"
RAW_HTTP_MODULES = {"urllib.request", "http.client"}
AIOHTTP_CLIENT_NAMES = {"ClientSession", "TCPConnector", "ClientTimeout", "request"}
# Modules outside node/client/ allowed to speak HTTP themselves, each with the reason. Empty: nothing needs to.
ALLOWED: dict[str, str] = {}


def http_clients_outside_the_edge(root: Path) -> list[str]:
    """Every place under `root`'s code that opens its own HTTP connection to a node instead of using node/client/:
    an import of urllib.request or http.client, or an aiohttp client object (session, connector, timeout,
    `aiohttp.request`). Serving HTTP (`aiohttp.web`) is not a client and is not flagged."""
    found = []
    for top in CODE_ROOTS:
        for path in sorted((root / top).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if rel.startswith(CLIENT_PACKAGE) or rel in ALLOWED:
                continue
            for node in ast.walk(ast.parse(path.read_text(), rel)):
                if isinstance(node, ast.Import):
                    found += [f"{rel}:{node.lineno}: import {a.name}" for a in node.names if a.name in RAW_HTTP_MODULES]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = {f"{node.module}.{a.name}" for a in node.names} | {node.module}
                    raw = names & RAW_HTTP_MODULES
                    aio = {a.name for a in node.names} & AIOHTTP_CLIENT_NAMES if node.module == "aiohttp" else set()
                    found += [f"{rel}:{node.lineno}: imports {n}" for n in sorted(raw | aio)]
                elif (
                    isinstance(node, ast.Attribute)
                    and node.attr in AIOHTTP_CLIENT_NAMES
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "aiohttp"
                ):
                    found.append(f"{rel}:{node.lineno}: aiohttp.{node.attr}")
    return found


def test_only_the_client_package_talks_http_to_a_node() -> None:
    assert http_clients_outside_the_edge(REPO) == []


def test_the_check_finds_each_kind_of_client(tmp_path: Path) -> None:
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "sneaky.py").write_text(
        "import urllib.request\nfrom http import client\nimport aiohttp\nfrom aiohttp import ClientSession, web\n"
        "async def f() -> None:\n    async with aiohttp.ClientSession() as s:\n        pass\n"
    )
    (tmp_path / "node" / "client").mkdir(parents=True)
    (tmp_path / "node" / "client" / "stdlib.py").write_text("import http.client\n")
    (tmp_path / "node" / "server.py").write_text("from aiohttp import web\n")
    found = http_clients_outside_the_edge(tmp_path)
    assert [f.split(": ", 1)[1] for f in found] == [
        "import urllib.request",
        "imports http.client",
        "imports ClientSession",
        "aiohttp.ClientSession",
    ]
