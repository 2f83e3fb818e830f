"""The device's side of encrypted offloading: build a request, open the edge node's answer (pure functions).

`run_local` runs the very same task code on the very same bytes, which is how a device executes a task it
decided not to offload, and how tests check that offloading does not change the answer.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import nacl.public

from offload import sealed_messages
from offload.context import RecordContext
from offload.errors import MalformedError, RemoteError
from offload.tasks import Task, get_task
from primitives import codec


@dataclass(frozen=True)
class PendingRequest:
    """A request on its way: `wire` goes to the edge node; the rest checks the answer."""

    wire: bytes
    request_id: bytes
    task: str
    edge_public: bytes


def build_request(
    task: str,
    payload: bytes,
    device_key: nacl.public.PrivateKey,
    edge_public: bytes,
    *,
    patient: bytes | None = None,
    record: RecordContext | None = None,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> PendingRequest:
    request_id = random_bytes(sealed_messages.REQUEST_ID_BYTES)
    nonce = random_bytes(sealed_messages.NONCE_BYTES)
    wire = sealed_messages.seal_request(task, payload, request_id, device_key, edge_public, nonce, patient, record)
    return PendingRequest(wire=wire, request_id=request_id, task=task, edge_public=edge_public)


def open_response(
    data: bytes,
    pending: PendingRequest,
    device_key: nacl.public.PrivateKey,
    *,
    max_bytes: int = sealed_messages.DEFAULT_MAX_RESPONSE_BYTES,
) -> codec.Value:
    """The result of `pending`; an error response raises `RemoteError`, a bad one a typed `EnvelopeError`."""
    outer = sealed_messages.decode_response(data, max_bytes)
    if outer["kind"] == "error":
        code, message, request_id = outer.get("code"), outer.get("message"), outer.get("id")
        if not isinstance(code, str) or not isinstance(message, str):
            raise MalformedError("error response lacks a code or message")
        if request_id is not None and request_id != pending.request_id:
            raise MalformedError("error response is for another request")
        raise RemoteError(code, message)
    request_id, task, result = sealed_messages.open_result(outer, device_key, pending.edge_public)
    if request_id != pending.request_id or task != pending.task:
        raise MalformedError("result is for another request")
    return result


def run_local(task: str, payload: bytes, tasks: dict[str, Task] | None = None) -> codec.Value:
    """Run a task on the device itself (decision x_n = 0)."""
    return get_task(task, tasks).run(payload)
