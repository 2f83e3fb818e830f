"""The input every health-analysis task takes: a sampled signal as one canonical DAG-CBOR map.

The device and the edge node run the same task code on the same bytes (offload/tasks.py), so the input has one
encoding and decoding refuses anything else: a peer's malformed or oversized input is a `TaskInputError`, never
a crash or unbounded work.

Format (docs/OFFLOAD.md):
    {"fs_mhz": sample rate in millihertz, "channels": channel count, "samples": little-endian float32 samples,
     interleaved by channel (frame after frame)}
The paper's task size D_n is the length of these bytes in bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from offload.errors import TaskInputError
from primitives import codec

FloatArray = npt.NDArray[np.float64]

SAMPLE_DTYPE = np.dtype("<f4")
MIN_SAMPLE_RATE_MHZ = 1_000  # 1 Hz
MAX_SAMPLE_RATE_MHZ = 10_000_000  # 10 kHz
MAX_CHANNELS = 16
_INPUT_KEYS = frozenset({"fs_mhz", "channels", "samples"})


@dataclass(frozen=True)
class Signal:
    """A decoded task input: `samples` has shape (frames, channels)."""

    samples: FloatArray
    sample_rate_hz: float

    @property
    def seconds(self) -> float:
        return float(self.samples.shape[0]) / self.sample_rate_hz


def encode_signal(samples: npt.ArrayLike, sample_rate_hz: float) -> bytes:
    """The canonical input bytes of a (frames,) or (frames, channels) signal."""
    array = np.asarray(samples, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or not 1 <= array.shape[1] <= MAX_CHANNELS:
        raise TaskInputError(f"a signal is (frames, channels) with 1..{MAX_CHANNELS} channels, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise TaskInputError("signal contains NaN or infinite samples")
    fs_mhz = round(sample_rate_hz * 1000)
    if not MIN_SAMPLE_RATE_MHZ <= fs_mhz <= MAX_SAMPLE_RATE_MHZ:
        raise TaskInputError(f"sample rate {sample_rate_hz} Hz outside 1 Hz..10 kHz")
    raw = np.ascontiguousarray(array, dtype=SAMPLE_DTYPE).tobytes()
    return codec.encode({"fs_mhz": fs_mhz, "channels": int(array.shape[1]), "samples": raw})


def decode_signal(payload: bytes, *, channels: int, min_seconds: float, max_frames: int) -> Signal:
    """Validate and decode input bytes; anything unexpected raises `TaskInputError`.

    `max_frames` bounds the work a peer can ask for: the edge runs whatever arrives within the size limit."""
    try:
        value = codec.decode(payload)
    except codec.CodecError as exc:
        raise TaskInputError(f"task input is not canonical CBOR: {exc}") from exc
    if not isinstance(value, dict) or set(value) != _INPUT_KEYS:
        raise TaskInputError(f"task input must be a map with keys {sorted(_INPUT_KEYS)}")
    fs_mhz, got_channels, raw = value["fs_mhz"], value["channels"], value["samples"]
    if (
        not isinstance(fs_mhz, int)
        or isinstance(fs_mhz, bool)
        or not MIN_SAMPLE_RATE_MHZ <= fs_mhz <= MAX_SAMPLE_RATE_MHZ
    ):
        raise TaskInputError("fs_mhz must be an integer sample rate between 1 Hz and 10 kHz in millihertz")
    if got_channels != channels:
        raise TaskInputError(f"this task takes {channels} channel(s), got {got_channels!r}")
    if not isinstance(raw, bytes) or len(raw) % (SAMPLE_DTYPE.itemsize * channels) != 0:
        raise TaskInputError("samples must be whole frames of little-endian float32")
    if len(raw) // (SAMPLE_DTYPE.itemsize * channels) > max_frames:
        raise TaskInputError(f"this task accepts at most {max_frames} frames")
    samples = np.frombuffer(raw, dtype=SAMPLE_DTYPE).astype(np.float64).reshape(-1, channels)
    if not np.all(np.isfinite(samples)):
        raise TaskInputError("signal contains NaN or infinite samples")
    signal = Signal(samples=samples, sample_rate_hz=fs_mhz / 1000)
    if signal.seconds < min_seconds:
        raise TaskInputError(f"this task needs at least {min_seconds} s of signal, got {signal.seconds:.2f} s")
    return signal


def fixed(value: float, scale: int) -> int | None:
    """`value` in fixed point (`round(value * scale)`), or None when it is not a finite number."""
    if not np.isfinite(value):
        return None
    return round(float(value) * scale)
