"""Edge execution gives the device the same answer as running locally; results reach the EHR hook."""

from __future__ import annotations

import nacl.public
import numpy as np
import pytest

from offload.client import build_request, open_response, run_local
from offload.context import RecordContext
from offload.edge import EdgeExecutor
from offload.errors import MalformedError, RemoteError
from offload.motion import motion_window
from offload.recordings import ppg_recording, ppg_window
from offload.task_input import encode_signal
from primitives import codec

DEVICE = nacl.public.PrivateKey(bytes(range(3, 35)))
EDGE = EdgeExecutor(nacl.public.PrivateKey(bytes(range(4, 36))))


class RecordingSink:
    def __init__(self) -> None:
        self.stored: list[tuple[bytes, str, codec.Value, RecordContext | None]] = []

    def store_result(self, patient: bytes, task: str, result: codec.Value, record: RecordContext | None) -> None:
        self.stored.append((patient, task, result, record))


def payload_for(task: str, rng: np.random.Generator) -> bytes:
    if task == "hrv/1":
        window = ppg_window(30, rng)
        return encode_signal(window.samples, window.sample_rate_hz)
    motion = motion_window(12, 2, rng)
    return encode_signal(motion.samples, motion.sample_rate_hz)


@pytest.mark.parametrize("task", ["hrv/1", "tremor/1"])
def test_offloaded_result_equals_local_result(task: str) -> None:
    payload = payload_for(task, np.random.default_rng(1))
    pending = build_request(task, payload, DEVICE, EDGE.public_key)
    remote = open_response(EDGE.handle(pending.wire), pending, DEVICE)
    local = run_local(task, payload)
    assert remote == local
    assert codec.encode(remote) == codec.encode(local)


def test_edge_lists_the_tasks_it_runs() -> None:
    assert EDGE.task_names == ["hrv/1", "tremor/1"]


def test_result_is_stored_for_the_named_patient_only() -> None:
    sink = RecordingSink()
    edge = EdgeExecutor(nacl.public.PrivateKey(bytes(range(5, 37))), sink=sink)
    payload = payload_for("tremor/1", np.random.default_rng(2))
    patient = bytes(20)
    pending = build_request("tremor/1", payload, DEVICE, edge.public_key, patient=patient)
    result = open_response(edge.handle(pending.wire), pending, DEVICE)
    assert sink.stored == [(patient, "tremor/1", result, None)]
    anonymous = build_request("tremor/1", payload, DEVICE, edge.public_key)
    open_response(edge.handle(anonymous.wire), anonymous, DEVICE)
    assert len(sink.stored) == 1


def test_record_context_reaches_the_sink_inside_the_box() -> None:
    sink = RecordingSink()
    edge = EdgeExecutor(nacl.public.PrivateKey(bytes(range(6, 38))), sink=sink)
    payload = payload_for("tremor/1", np.random.default_rng(4))
    context = RecordContext("phone-1", 1_700_000_000_000, 1_700_000_012_000)
    pending = build_request("tremor/1", payload, DEVICE, edge.public_key, patient=b"\x07" * 20, record=context)
    assert b"phone-1" not in pending.wire  # sealed, like the patient
    open_response(edge.handle(pending.wire), pending, DEVICE)
    assert sink.stored[0][3] == context


def test_record_context_without_a_patient_is_refused() -> None:
    context = RecordContext("phone-1", 0, 1000)
    with pytest.raises(MalformedError, match="needs a patient"):
        build_request("tremor/1", b"x", DEVICE, EDGE.public_key, record=context)


@pytest.mark.parametrize(
    ("device", "start", "end", "words"),
    [
        ("", 0, 1, "FHIR id"),
        ("a/b", 0, 1, "FHIR id"),
        ("d" * 65, 0, 1, "FHIR id"),
        ("dev", -1, 1, "start_ms"),
        ("dev", 0, 253_402_300_800_000, "end_ms"),
        ("dev", 5, 4, "ends before"),
    ],
)
def test_malformed_record_context_is_refused(device: str, start: int, end: int, words: str) -> None:
    with pytest.raises(MalformedError, match=words):
        RecordContext(device, start, end)


@pytest.mark.parametrize(
    "wire",
    [
        {"device": "dev", "start_ms": 0},
        {"device": "dev", "start_ms": 0, "end_ms": 1, "extra": 1},
        {"device": 5, "start_ms": 0, "end_ms": 1},
        {"device": "dev", "start_ms": "0", "end_ms": 1},
        [1, 2, 3],
    ],
)
def test_malformed_record_field_from_a_peer_is_refused(wire: codec.Value) -> None:
    with pytest.raises(MalformedError):
        RecordContext.from_wire(wire)


def test_bad_signal_comes_back_as_a_typed_error() -> None:
    wrong_channels = encode_signal(np.zeros((600, 2)), 100.0)
    pending = build_request("tremor/1", wrong_channels, DEVICE, EDGE.public_key)
    with pytest.raises(RemoteError) as caught:
        open_response(EDGE.handle(pending.wire), pending, DEVICE)
    assert caught.value.code == "bad-input"


def test_signal_without_heartbeats_is_a_task_failure() -> None:
    flat = encode_signal(np.full(3000, 500.0), 100.0)
    pending = build_request("hrv/1", flat, DEVICE, EDGE.public_key)
    with pytest.raises(RemoteError) as caught:
        open_response(EDGE.handle(pending.wire), pending, DEVICE)
    assert caught.value.code == "task-failed"


def test_heart_rate_of_the_clean_recording() -> None:
    recording = ppg_recording(0)
    result = run_local("hrv/1", encode_signal(recording.samples, recording.sample_rate_hz))
    assert isinstance(result, dict)
    # heartpy's own documentation reports ~58.9 bpm for this recording.
    assert result["bpm_milli"] == pytest.approx(58_900, abs=300)


def test_edge_refuses_a_peer_record_context_without_a_patient() -> None:
    # Built by hand, as a foreign client could: build_request itself refuses this combination.
    inner: codec.Value = {"dir": "req", "id": bytes(16), "task": "tremor/1", "input": b"", "record": {"device": "d"}}
    nonce = bytes(24)
    box = nacl.public.Box(DEVICE, nacl.public.PublicKey(EDGE.public_key)).encrypt(codec.encode(inner), nonce)
    outer: codec.Value = {
        "v": 1,
        "kind": "request",
        "device": bytes(DEVICE.public_key),
        "nonce": nonce,
        "box": box.ciphertext,
    }
    answer = codec.decode(EDGE.handle(codec.encode(outer)))
    assert isinstance(answer, dict)
    assert answer["code"] == "malformed" and "needs a patient" in str(answer["message"])
