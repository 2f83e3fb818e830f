"""The edge node's side of encrypted offloading: bytes in, bytes out (paper Sec. III-A, "offloading").

`EdgeExecutor.handle` is what the node wires onto the libp2p protocol /ehrnet/offload/1.0.0 and onto the edge's
HTTP endpoint: it never raises for bad input, it answers every request with either a sealed result or an error
response (docs/OFFLOAD.md). It holds no sockets, clocks or threads; randomness (nonces) is injected.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import nacl.public

from offload import sealed_messages
from offload.errors import OffloadError, TaskFailedError
from offload.sink import ResultSink
from offload.tasks import Task, get_task, registry
from primitives import codec


class EdgeExecutor:
    def __init__(
        self,
        key: nacl.public.PrivateKey,
        *,
        tasks: dict[str, Task] | None = None,
        max_request_bytes: int = sealed_messages.DEFAULT_MAX_REQUEST_BYTES,
        sink: ResultSink | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._key = key
        self._tasks = registry() if tasks is None else tasks
        self._max_request_bytes = max_request_bytes
        self._sink = sink
        self._random_bytes = random_bytes

    @property
    def public_key(self) -> bytes:
        """The X25519 key devices encrypt for (publish it, or derive it from the node's Ed25519 identity)."""
        return bytes(self._key.public_key)

    @property
    def task_names(self) -> list[str]:
        return sorted(self._tasks)

    def handle(self, request: bytes) -> bytes:
        """Answer one request: a result sealed for the requesting device, or an error response."""
        try:
            opened = sealed_messages.open_request(request, self._key, self._max_request_bytes)
        except OffloadError as exc:
            return sealed_messages.error_response(exc)
        try:
            result = self._run(opened)
        except OffloadError as exc:
            return sealed_messages.error_response(exc, opened.request_id)
        if opened.patient is not None and self._sink is not None:
            self._sink.store_result(opened.patient, opened.task, result, opened.record)
        return sealed_messages.seal_result(opened, result, self._key, self._random_bytes(sealed_messages.NONCE_BYTES))

    def _run(self, opened: sealed_messages.OpenedRequest) -> codec.Value:
        task = get_task(opened.task, self._tasks)
        try:
            return task.run(opened.payload)
        except OffloadError:
            raise
        except Exception as exc:
            # Third-party analysis code (heartpy, scipy) can fail in ways we cannot enumerate on odd signals;
            # a peer's input must never take the edge node down, so anything else becomes a typed refusal.
            raise TaskFailedError(f"{opened.task} failed on this input: {type(exc).__name__}") from exc
