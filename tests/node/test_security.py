"""The node speaks Noise only: a peer proposing plaintext is refused during protocol negotiation.

Spoken on a raw TCP socket in multistream-select 1.0 (length-prefixed, newline-terminated protocol names), so
the test depends on no libp2p implementation's own choice of security transports.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.harness import running_cluster

pytestmark = pytest.mark.cluster

MULTISTREAM = "/multistream/1.0.0"


def _frame(text: str) -> bytes:
    data = (text + "\n").encode()
    return bytes([len(data)]) + data


def _read_frame(sock: socket.socket) -> str:
    length = sock.recv(1)[0]
    data = b""
    while len(data) < length:
        chunk = sock.recv(length - len(data))
        if not chunk:
            break
        data += chunk
    return data.decode().rstrip("\n")


def _negotiate(port: int, protocol: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(_frame(MULTISTREAM) + _frame(protocol))
        assert _read_frame(sock) == MULTISTREAM
        return _read_frame(sock)


def test_plaintext_is_refused_and_noise_accepted(tmp_path: Path) -> None:
    with running_cluster(tmp_path, n=1) as cluster:
        port = int(cluster.records["node1"].multiaddr.split("/tcp/")[1].split("/")[0])
        assert _negotiate(port, "/plaintext/2.0.0") == "na"
        assert _negotiate(port, "/plaintext/1.0.0") == "na"
        assert _negotiate(port, "/tls/1.0.0") == "na"
        assert _negotiate(port, "/noise") == "/noise"
        assert cluster.status_of("node1") is not None  # the refusals did not hurt the node
