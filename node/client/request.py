"""What a client sends to a node and how an answer becomes a value or an error: pure, shared by every transport.

A transport only moves bytes (node/client/stdlib.py, node/client/aio.py); building the request and judging the
answer happen here, once, so both transports report the same node the same way.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from node.client.errors import NodeBadAnswer, NodeRefused

DEFAULT_TIMEOUT_S = 10.0
# An answer read whole (not streamed) larger than this is refused: a node's JSON answers are bounded far below it.
MAX_ANSWER_BYTES = 64 << 20
# Error bodies are short JSON, except a batch refusal of `POST /tx`, which lists every refused transaction (up to
# 5,000 a request, ~120 bytes each); reading more of a misbehaving node's error would only waste memory.
MAX_ERROR_BYTES = 1 << 20
CHUNK = 256 << 10

Body = bytes | Iterable[bytes] | None
Sink = Callable[[bytes], object]


@dataclass(frozen=True)
class Request:
    """One HTTP request to a node's API. `body` is raw bytes or an iterable of chunks (streamed, chunked
    encoding); `operator` adds the transport's bearer token; `timeout_s` overrides the transport's default. A
    timeout bounds how long the node may stay silent — to connect, or between parts of its answer — in both
    transports, not the length of a transfer: a large download that keeps flowing is never cut."""

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    body: Body = None
    json_body: bool = False
    operator: bool = False
    timeout_s: float | None = None
    max_bytes: int = MAX_ANSWER_BYTES

    def target(self) -> str:
        """The request target: the path with its query string."""
        return f"{self.path}?{urllib.parse.urlencode(self.query)}" if self.query else self.path

    def headers(self, token: str | None) -> dict[str, str]:
        headers = {"Content-Type": "application/json"} if self.json_body else {}
        if self.operator and token:
            headers["Authorization"] = f"Bearer {token}"
        return headers


def get(path: str, query: dict[str, str] | None = None, **options: Any) -> Request:
    return Request("GET", path, query or {}, **options)


def send_json(method: str, path: str, doc: Any, query: dict[str, str] | None = None, **options: Any) -> Request:
    body = None if doc is None else json.dumps(doc).encode()
    return Request(method, path, query or {}, body, json_body=True, **options)


@dataclass(frozen=True)
class Answer:
    """A node's answer as a transport read it: status and body (empty when the body went to a sink)."""

    status: int
    body: bytes


def refusal(url: str, status: int, body: bytes, reason: str = "") -> NodeRefused:
    """A 4xx/5xx answer as NodeRefused, carrying the node's own `error` message and `code` when it sent JSON."""
    message, code = reason or f"HTTP {status}", None
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        message = str(doc.get("error", message))
        code = str(doc["code"]) if "code" in doc else None
        return NodeRefused(url, status, message, code, doc)
    if body:
        message = body[:200].decode("utf-8", "replace")
    return NodeRefused(url, status, message, code)


def decode(url: str, answer: Answer) -> Any:
    """The JSON value of a 2xx answer (None for an empty body), or the error it stands for."""
    if answer.status >= 400:
        raise refusal(url, answer.status, answer.body)
    if not answer.body:
        return None
    try:
        return json.loads(answer.body)
    except ValueError as exc:
        raise NodeBadAnswer(url, "the answer is not JSON") from exc


def document(url: str, value: Any) -> dict[str, Any]:
    """A decoded answer that must be a JSON object (every documented JSON answer of the API is one)."""
    if not isinstance(value, dict):
        raise NodeBadAnswer(url, f"expected a JSON object, got {type(value).__name__}")
    return value
