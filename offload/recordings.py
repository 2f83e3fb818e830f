"""Real photoplethysmogram (PPG) recordings shipped inside heartpy's wheel, used as heart-rate workloads.

heartpy 1.2.x ships three finger PPG recordings (heartpy/data, documented in its example notebook):
  0: data.csv  — ~25 s, very clean, 100 Hz, no timer column;
  1: data2.csv — ~2 min, millisecond timer (~117 Hz), signal missing in the first third plus noise spikes;
  2: data3.csv — ~11.4 min recorded in a driving simulator with a Pulse Sensor, datetime timer (~100 Hz).
No ECG recording ships in the wheel, so every heart-rate task here is PPG. Recording 2 is long enough to cut
windows of 10 s to 11 minutes, which is how the task size D varies.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from offload.errors import TaskInputError
from offload.tasks import FloatArray

LONG_RECORDING = 2
_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


@dataclass(frozen=True)
class Recording:
    samples: FloatArray
    sample_rate_hz: float

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate_hz


@functools.lru_cache(maxsize=3)
def ppg_recording(index: int) -> Recording:
    """heartpy's example recording `index` (0, 1 or 2) with its sample rate."""
    import heartpy

    if index not in (0, 1, 2):
        raise TaskInputError(f"heartpy ships recordings 0, 1 and 2, not {index}")
    data, timer = heartpy.load_exampledata(index)
    if index == 0:
        rate = 100.0  # stated by heartpy's documentation; the file has no timer
    elif index == 1:
        rate = float(heartpy.get_samplerate_mstimer(timer))
    else:
        rate = float(heartpy.get_samplerate_datetime(timer, timeformat=_DATETIME_FORMAT))
    samples = np.asarray(data, dtype=np.float64)
    samples.setflags(write=False)
    return Recording(samples=samples, sample_rate_hz=rate)


def ppg_window(seconds: float, rng: np.random.Generator, index: int = LONG_RECORDING) -> Recording:
    """A `seconds`-long window of a recording starting at a random offset drawn from `rng`."""
    recording = ppg_recording(index)
    frames = round(seconds * recording.sample_rate_hz)
    if not 0 < frames <= len(recording.samples):
        raise TaskInputError(f"recording {index} is {recording.seconds:.0f} s long; cannot cut {seconds} s")
    start = int(rng.integers(0, len(recording.samples) - frames + 1))
    return Recording(samples=recording.samples[start : start + frames], sample_rate_hz=recording.sample_rate_hz)
