"""Hostile HTTP input against a real node process: every bad request is a 4xx with a message, never a 500; no
traceback in the log for a client's error; an oversized body is refused before it is read, so the node's memory
does not grow with it."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from node.cluster.local import Cluster
from tests.harness import operator_token, running_cluster

pytestmark = pytest.mark.cluster

BIG_BODY = 66_000_000  # under the old 64 MiB bound: the node read and decoded all of it before refusing
DEEP = 2_000  # past the json module's recursion limit, and small enough for every endpoint's size bound


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path, n=1) as cluster:
        yield cluster


def _port(cluster: Cluster) -> int:
    return int(cluster.records["node1"].http_url.rsplit(":", 1)[1])


def _request(
    cluster: Cluster, method: str, path: str, body: bytes | None = None, token: str | None = None
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", _port(cluster), timeout=30)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, raw.decode(errors="replace")


def _log(cluster: Cluster) -> str:
    return Path(cluster.records["node1"].log).read_text(errors="replace")


def _a_height_past_any_integer_is_a_400(node: Cluster) -> None:
    status, doc = _request(node, "GET", "/blocks/99999999999999999999")
    assert status == 400, doc
    assert "height" in doc["error"]
    status, doc = _request(node, "GET", "/blocks/%C2%B2")  # "²" is a digit to str.isdigit, not to int()
    assert status == 400, doc


def _json_nested_thousands_deep_is_a_400(node: Cluster) -> None:
    token = operator_token(node, "node1")
    body = b'{"tx": ' + b"[" * DEEP + b"]" * DEEP + b"}"
    for path in ("/tx", "/contracts", "/contracts/ehr/call", "/probe/publish"):
        status, doc = _request(node, "POST", path, body, token)
        assert status == 400, (path, doc)
        assert "nested deeper" in doc["error"]


def _a_caller_that_is_not_text_is_a_400(node: Cluster) -> None:
    body = json.dumps({"function": "policy_list", "args": [], "caller": 12345}).encode()
    status, doc = _request(node, "POST", "/contracts/ehr/call", body)
    assert status == 400, doc
    assert doc["error"].startswith("caller:")


def _non_ascii_digits_are_a_400(node: Cluster) -> None:
    for path in ("/events?limit=%C2%B2", "/light/headers?from=%C2%B2&to=1", "/objects?replication=%C2%B2"):
        method = "POST" if path.startswith("/objects") else "GET"
        status, doc = _request(node, method, path, b"" if method == "POST" else None)
        assert status == 400, (path, doc)


def test_bad_input_is_a_4xx_with_a_message_and_no_traceback(node: Cluster) -> None:
    _a_height_past_any_integer_is_a_400(node)
    _json_nested_thousands_deep_is_a_400(node)
    _a_caller_that_is_not_text_is_a_400(node)
    _non_ascii_digits_are_a_400(node)
    assert "Traceback" not in _log(node)
    # A URL over aiohttp's 8 KiB line limit is refused by the HTTP parser itself: a 400, and one DEBUG line.
    before = _log(node).count("Traceback")
    for _ in range(3):
        status, _doc = _request(node, "GET", "/status?pad=" + "x" * 9000)
        assert status == 400
    status, _doc = _request(node, "GET", "/status")
    assert status == 200
    assert _log(node).count("Traceback") == before


def _big_body(size: int) -> bytes:
    """A well-formed `POST /tx` body of `size` bytes (one huge "transaction"): the old node decoded all of it."""
    prefix, suffix = b'{"txs": ["', b'"]}'
    return prefix + b"a" * (size - len(prefix) - len(suffix)) + suffix


def _send_big(port: int, body: bytes, results: list[int], chunked: bool = False) -> None:
    """POST /tx with `body`, sent in 1 MiB pieces; records the status (0 if none came back)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    view = memoryview(body)
    try:
        conn.putrequest("POST", "/tx")
        conn.putheader("Content-Type", "application/json")
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        else:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        try:
            for start in range(0, len(body), 1 << 20):
                data = bytes(view[start : start + (1 << 20)])
                conn.send(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
            if chunked:
                conn.send(b"0\r\n\r\n")
        except OSError:
            pass  # the node answered and closed without reading the rest: expected
        response = conn.getresponse()
        response.read()
        results.append(response.status)
    except OSError:
        results.append(0)
    finally:
        conn.close()


def test_an_oversized_body_is_refused_before_it_is_read(node: Cluster) -> None:
    pid = node.records["node1"].pid
    assert pid is not None
    process = psutil.Process(pid)
    body = _big_body(BIG_BODY)
    warm_up: list[int] = []
    _send_big(_port(node), body, warm_up)  # a fresh node's first requests load code and fill caches
    assert warm_up == [413]
    rss_before = process.memory_info().rss
    peak = [rss_before]
    sending = threading.Event()
    sending.set()

    def sample() -> None:
        while sending.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            sending.wait(0.005)  # (a sampling period, not a synchronisation)

    sampler = threading.Thread(target=sample)
    sampler.start()
    results: list[int] = []
    senders = [threading.Thread(target=_send_big, args=(_port(node), body, results)) for _ in range(6)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(120)
    sending.clear()
    sampler.join()
    grown = peak[0] - rss_before
    print(f"RSS before {rss_before / 1e6:.0f} MB, peak during six 66 MB bodies {peak[0] / 1e6:.0f} MB")
    assert results == [413] * 6
    # The old code grew by ~650 MB here (every body read whole). A running node also grows by itself (blocks,
    # caches, socket buffers of six concurrent uploads), so the bound is one body: reading any body whole fails it.
    assert grown < BIG_BODY, f"RSS grew by {grown / 1e6:.0f} MB"
    # Without a declared length the body is read only up to the endpoint's bound, then refused.
    chunked: list[int] = []
    _send_big(_port(node), body, chunked, chunked=True)
    assert chunked == [413]
    status, _doc = _request(node, "GET", "/status")
    assert status == 200
