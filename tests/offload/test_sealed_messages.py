"""Encrypted offload messages: round trip, tampering, oversize and malformed input, typed errors."""

from __future__ import annotations

import itertools

import nacl.public
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offload import sealed_messages
from offload.client import PendingRequest, build_request, open_response
from offload.edge import EdgeExecutor
from offload.errors import MalformedError, RemoteError, TamperedError
from offload.task_input import encode_signal
from primitives import codec
from primitives.keys import SigningKey


class EchoTask:
    """A stand-in analysis so these tests do not depend on heartpy."""

    name = "echo/1"

    def run(self, payload: bytes) -> codec.Value:
        return {"length": len(payload)}


def counter_bytes() -> object:
    counter = itertools.count()
    return lambda n: bytes([next(counter) % 256]) * n


DEVICE = nacl.public.PrivateKey(bytes(range(32)))
EDGE_KEY = nacl.public.PrivateKey(bytes(range(1, 33)))


def executor(max_bytes: int = 10_000) -> EdgeExecutor:
    return EdgeExecutor(EDGE_KEY, tasks={"echo/1": EchoTask()}, max_request_bytes=max_bytes)


def request(payload: bytes = b"x" * 100, task: str = "echo/1") -> PendingRequest:
    return build_request(task, payload, DEVICE, bytes(EDGE_KEY.public_key))


def remote_code(response: bytes, pending: PendingRequest) -> str:
    with pytest.raises(RemoteError) as caught:
        open_response(response, pending, DEVICE)
    return caught.value.code


def test_round_trip() -> None:
    pending = request()
    assert open_response(executor().handle(pending.wire), pending, DEVICE) == {"length": 100}


def test_request_is_encrypted() -> None:
    payload = encode_signal(np.arange(50.0), 100.0)
    wire = request(payload).wire
    assert payload not in wire and payload[:16] not in wire


@pytest.mark.parametrize("position", [-1, -20, 60])
def test_tampered_request_is_rejected_as_decrypt_failed(position: int) -> None:
    pending = request()
    outer = codec.decode(pending.wire)
    assert isinstance(outer, dict)
    box = bytearray(outer["box"])  # type: ignore[arg-type]
    box[position] ^= 0x01
    outer["box"] = bytes(box)
    assert remote_code(executor().handle(codec.encode(outer)), pending) == "decrypt-failed"


def test_request_sealed_for_another_edge_is_rejected() -> None:
    other = nacl.public.PrivateKey(bytes(range(2, 34)))
    pending = build_request("echo/1", b"abc", DEVICE, bytes(other.public_key))
    assert remote_code(executor().handle(pending.wire), pending) == "decrypt-failed"


def test_oversized_request_is_rejected_before_decoding() -> None:
    pending = request(b"x" * 20_000)
    assert remote_code(executor(max_bytes=10_000).handle(pending.wire), pending) == "too-large"


@pytest.mark.parametrize(
    "wire",
    [
        b"",
        b"\xff\x00garbage",
        codec.encode([1, 2, 3]),
        codec.encode({"v": 1, "kind": "request"}),
        codec.encode({"v": 1, "kind": "request", "device": b"short", "nonce": b"n" * 24, "box": b""}),
        codec.encode({"v": 1, "kind": "request", "device": b"k" * 32, "nonce": b"short", "box": b""}),
        codec.encode({"v": 1, "kind": "result", "nonce": b"n" * 24, "box": b""}),
    ],
)
def test_malformed_requests_get_a_malformed_error(wire: bytes) -> None:
    response = codec.decode(executor().handle(wire))
    assert isinstance(response, dict)
    assert response["kind"] == "error" and response["code"] == "malformed"


def test_unknown_version_is_named() -> None:
    wire = codec.encode({"v": 2, "kind": "request"})
    response = codec.decode(executor().handle(wire))
    assert isinstance(response, dict) and response["code"] == "unsupported-version"


def test_unknown_task_error_echoes_the_request_id() -> None:
    pending = request(task="nope/1")
    response = executor().handle(pending.wire)
    decoded = codec.decode(response)
    assert isinstance(decoded, dict) and decoded["id"] == pending.request_id
    assert remote_code(response, pending) == "unknown-task"


def test_request_reflected_back_as_a_response_is_refused() -> None:
    pending = request()
    outer = codec.decode(pending.wire)
    assert isinstance(outer, dict)
    fake = codec.encode({"v": 1, "kind": "result", "nonce": outer["nonce"], "box": outer["box"]})
    with pytest.raises(MalformedError, match="not a result"):
        open_response(fake, pending, DEVICE)


def test_answer_to_another_request_is_refused() -> None:
    edge = executor()
    first, second = request(b"one"), request(b"two")
    with pytest.raises(MalformedError, match="another request"):
        open_response(edge.handle(first.wire), second, DEVICE)


def test_tampered_response_is_detected_by_the_device() -> None:
    pending = request()
    outer = codec.decode(executor().handle(pending.wire))
    assert isinstance(outer, dict)
    box = bytearray(outer["box"])  # type: ignore[arg-type]
    box[5] ^= 0x80
    outer["box"] = bytes(box)
    with pytest.raises(TamperedError):
        open_response(codec.encode(outer), pending, DEVICE)


def test_edge_key_can_be_derived_from_its_ed25519_identity() -> None:
    identity = SigningKey(bytes(range(32)))
    edge = EdgeExecutor(sealed_messages.box_key_from_identity(identity), tasks={"echo/1": EchoTask()})
    edge_public = sealed_messages.box_public_key_from_identity(identity.public_key)
    assert edge_public == edge.public_key
    pending = build_request("echo/1", b"abc", DEVICE, edge_public)
    assert open_response(edge.handle(pending.wire), pending, DEVICE) == {"length": 3}


def test_injected_randomness_makes_requests_deterministic() -> None:
    first = build_request("echo/1", b"a", DEVICE, bytes(EDGE_KEY.public_key), random_bytes=counter_bytes())  # type: ignore[arg-type]
    second = build_request("echo/1", b"a", DEVICE, bytes(EDGE_KEY.public_key), random_bytes=counter_bytes())  # type: ignore[arg-type]
    assert first.wire == second.wire


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_crash_the_edge(wire: bytes) -> None:
    response = codec.decode(executor().handle(wire))
    assert isinstance(response, dict) and response["kind"] == "error"
    assert response["code"] in {"malformed", "unsupported-version", "too-large", "decrypt-failed"}


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=0, max_value=7))
def test_any_single_bit_flip_is_rejected(position: int, bit: int) -> None:
    pending = request()
    wire = bytearray(pending.wire)
    wire[position % len(wire)] ^= 1 << bit
    response = executor().handle(bytes(wire))
    with pytest.raises((RemoteError, MalformedError)):
        open_response(response, pending, DEVICE)


@pytest.mark.parametrize("device_key", [bytes(32), b"\x01" + bytes(31), b"\xff" * 32])
@pytest.mark.parametrize("box", [b"", b"abc", b"x" * 40])
def test_degenerate_keys_and_boxes_fail_authentication(device_key: bytes, box: bytes) -> None:
    wire = codec.encode({"v": 1, "kind": "request", "device": device_key, "nonce": b"n" * 24, "box": box})
    response = codec.decode(executor().handle(wire))
    assert isinstance(response, dict) and response["code"] == "decrypt-failed"
