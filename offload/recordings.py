"""Real photoplethysmogram (PPG) recordings shipped inside heartpy's wheel, used as heart-rate workloads.

heartpy 1.2.x ships three finger PPG recordings (heartpy/data, documented in its example notebook):
  0: data.csv  — ~25 s, very clean, 100 Hz, no timer column;
  1: data2.csv — ~2 min, millisecond timer (~117 Hz), signal missing in the first third plus noise spikes;
  2: data3.csv — ~11.4 min recorded in a driving simulator with a Pulse Sensor, datetime timer (~100 Hz).
No ECG recording ships in the wheel, so every heart-rate task here is PPG. Recording 2 is long enough to cut
windows of 10 s to 11 minutes, which is how the task size D varies.

The files are read here with numpy rather than with `heartpy.load_exampledata`: importing heartpy costs about a
second (scipy) and its loader parses every timestamp, while a device that only cuts windows to send needs
neither. The samples and sample rates equal heartpy's own (tested): recording 1's rate is heartpy's
`get_samplerate_mstimer` formula, recording 2's its `get_samplerate_datetime` (first and last timestamps).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from offload.errors import TaskInputError
from offload.heartpy_import import heartpy_data_dir
from offload.task_input import FloatArray

LONG_RECORDING = 2
_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


@dataclass(frozen=True)
class Recording:
    samples: FloatArray
    sample_rate_hz: float

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate_hz


_FILES = ("data.csv", "data2.csv", "data3.csv")


@functools.lru_cache(maxsize=3)
def ppg_recording(index: int) -> Recording:
    """heartpy's example recording `index` (0, 1 or 2) with its sample rate."""
    if index not in (0, 1, 2):
        raise TaskInputError(f"heartpy ships recordings 0, 1 and 2, not {index}")
    path = heartpy_data_dir() / _FILES[index]
    if index == 0:
        samples = np.loadtxt(path, dtype=np.float64)
        rate = 100.0  # stated by heartpy's documentation; the file has no timer
    elif index == 1:
        timer, samples = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, unpack=True)
        rate = float(len(timer) / (timer[-1] - timer[0]) * 1000)
    else:
        samples = np.loadtxt(path, delimiter=",", skiprows=1, usecols=1, dtype=np.float64)
        with path.open(encoding="utf-8") as handle:
            lines = handle.read().splitlines()
        stamps = [line.split(",")[0] for line in (lines[1], lines[-1])]
        first, last = (datetime.strptime(stamp, _DATETIME_FORMAT) for stamp in stamps)
        rate = float(len(samples) / (last - first).total_seconds())
    samples = np.ascontiguousarray(samples, dtype=np.float64)
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
