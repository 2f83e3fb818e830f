"""One exit-code policy for every command group that talks to a node (docs/API.md, "Clients"): a node that cannot
be reached exits 2, a node that refuses exits 1 with its own message, each as one `ehrnet: error:` line."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from node.cli.main import main
from primitives.keys import SigningKey

CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


class Refusing(BaseHTTPRequestHandler):
    """A node that refuses everything as the API does: a 4xx with a JSON error."""

    def _refuse(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = json.dumps({"error": "refused by the test node"}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _refuse

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture(scope="module")
def refusing() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def unreachable() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def commands(node: str, tmp: Path) -> list[list[str]]:
    key, token = tmp / "user.key", tmp / "api.token"
    if not key.exists():
        SigningKey.generate().save(key)
        token.write_text("0" * 64)
    return [
        ["tx", "get", "ab" * 32, "--node", node],
        ["tx", "record", "--key", str(key), "--node", node, "name", "value"],
        ["state", "get", "name", "--owner", "00" * 20, "--node", node],
        ["contract", "call", "ehr", "f", "--view", "--node", node],
        ["cat", CID, "--node", node],
        ["pin", "ls", "--node", node, "--token-file", str(token)],
        ["gc", "--node", node, "--token-file", str(token)],
        ["dag", "export", CID, "--node", node],
        ["admin", "reviews", "--key", str(key), "--node", node],
    ]


@pytest.mark.parametrize("index", range(9))
def test_an_unreachable_node_exits_2_in_every_group(
    index: int, unreachable: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = commands(unreachable, tmp_path)[index]
    assert main(argv) == 2, argv
    err = capsys.readouterr().err
    assert err.startswith("ehrnet: error: ") and "cannot reach the node" in err and "Traceback" not in err


@pytest.mark.parametrize("index", range(9))
def test_a_refusing_node_exits_1_with_its_message_in_every_group(
    index: int, refusing: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = commands(refusing, tmp_path)[index]
    assert main(argv) == 1, argv
    err = capsys.readouterr().err
    assert "refused by the test node" in err and "Traceback" not in err
