"""Task inputs and the tremor analysis on the documented generator."""

from __future__ import annotations

import numpy as np
import pytest

from offload.errors import TaskInputError, UnknownTaskError
from offload.motion import motion_window
from offload.task_input import decode_signal, encode_signal
from offload.tasks import get_task
from offload.tremor import TremorTask, severity_score
from primitives import codec


def test_signal_round_trip_and_size_grows_with_window() -> None:
    short = encode_signal(np.ones((100, 6)), 100.0)
    long = encode_signal(np.ones((1000, 6)), 100.0)
    assert len(long) - len(short) == 900 * 6 * 4
    signal = decode_signal(long, channels=6, min_seconds=1, max_frames=1000)
    assert signal.samples.shape == (1000, 6) and signal.sample_rate_hz == 100.0


@pytest.mark.parametrize(
    "payload",
    [
        b"not cbor",
        codec.encode({"fs_mhz": 100_000, "channels": 1}),
        codec.encode({"fs_mhz": 0, "channels": 1, "samples": b"\x00" * 4}),
        codec.encode({"fs_mhz": 100_000, "channels": 1, "samples": b"\x00" * 5}),
        codec.encode({"fs_mhz": 100_000, "channels": 1, "samples": b"\x00\x00\xc0\x7f" * 1000}),  # NaN
        codec.encode({"fs_mhz": 100_000, "channels": 1, "samples": b"\x00" * 8}),  # too short
        codec.encode({"fs_mhz": 100_000, "channels": 2, "samples": b"\x00" * 8000}),
        codec.encode({"fs_mhz": 100_000, "channels": 1, "samples": b"\x00" * 8000}),  # 2000 frames > 1500
    ],
)
def test_bad_inputs_raise_task_input_error(payload: bytes) -> None:
    with pytest.raises(TaskInputError):
        decode_signal(payload, channels=1, min_seconds=1, max_frames=1500)


def test_unknown_task() -> None:
    with pytest.raises(UnknownTaskError):
        get_task("nope/1")


def test_severity_thresholds_follow_mds_updrs() -> None:
    assert [severity_score(a) for a in (0.05, 0.5, 1.0, 2.0, 3.0, 5.0, 12.0)] == [0, 1, 1, 2, 2, 3, 4]


@pytest.mark.parametrize("severity", range(5))
def test_tremor_analysis_recovers_the_generated_severity(severity: int) -> None:
    rng = np.random.default_rng(severity)
    task = TremorTask()
    for _ in range(4):
        window = motion_window(float(rng.uniform(5, 40)), severity, rng)
        result = task.run(encode_signal(window.samples, window.sample_rate_hz))
        assert isinstance(result, dict)
        assert result["severity"] == severity
        if severity:
            assert result["frequency_mhz"] == pytest.approx(window.frequency_hz * 1000, rel=0.05)


def test_motion_generator_is_seeded() -> None:
    a = motion_window(5, 3, np.random.default_rng(4)).samples
    b = motion_window(5, 3, np.random.default_rng(4)).samples
    assert np.array_equal(a, b)
    with pytest.raises(TaskInputError):
        motion_window(5, 7, np.random.default_rng(0))
