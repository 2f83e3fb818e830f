"""The one client edge (docs/API.md, "Clients"): only node/client/ talks HTTP to a node, and its standard-library
path stays light enough for a device (importing aiohttp alone peaks at ~33 MB; the light client fits in 30 MB)."""

from __future__ import annotations

import json
import subprocess
import sys


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
