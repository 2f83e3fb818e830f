"""Heart rate and heart-rate variability from a PPG (or ECG) window, using heartpy's analysis.

heartpy 1.2.7 works with numpy 2 for `heartpy.process` (checked on all three shipped recordings), so the
analysis is heartpy's own: band-limited peak detection, peak rejection, then time-domain HRV measures.
The result is fixed point so both sides of an offload encode it to the same bytes.
"""

from __future__ import annotations

import warnings

from offload.errors import TaskFailedError
from offload.heartpy_import import import_heartpy
from offload.task_input import decode_signal, fixed
from primitives import codec

# heartpy needs a few beats to reject outliers; shorter windows make its measures meaningless.
MIN_SECONDS = 5.0
# heartpy's time grows faster than linearly (~0.3 s for 68k samples here); 120k samples is 20 min at 100 Hz.
MAX_FRAMES = 120_000


class HeartRateTask:
    """Task "hrv/1": one channel of PPG/ECG -> heart rate and time-domain HRV."""

    @property
    def name(self) -> str:
        return "hrv/1"

    def run(self, payload: bytes) -> codec.Value:
        heartpy = import_heartpy()
        from heartpy.exceptions import BadSignalWarning

        signal = decode_signal(payload, channels=1, min_seconds=MIN_SECONDS, max_frames=MAX_FRAMES)
        try:
            with warnings.catch_warnings():
                # Numpy warns on empty slices for windows with few accepted beats; the NaN is handled below.
                warnings.simplefilter("ignore")
                _, measures = heartpy.process(signal.samples[:, 0], signal.sample_rate_hz)
        except (BadSignalWarning, ValueError, IndexError, ZeroDivisionError) as exc:
            raise TaskFailedError(f"heart-rate analysis failed: {exc}") from exc
        bpm = fixed(measures["bpm"], 1000)
        if bpm is None:
            raise TaskFailedError("no heart rate could be measured in this window")
        return {
            "bpm_milli": bpm,
            "ibi_us": fixed(measures["ibi"], 1000),
            "sdnn_us": fixed(measures["sdnn"], 1000),
            "rmssd_us": fixed(measures["rmssd"], 1000),
            "pnn50_ppm": fixed(measures["pnn50"], 1_000_000),
            "breathing_mhz": fixed(measures["breathingrate"], 1000),
        }
