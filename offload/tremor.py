"""Rest-tremor severity from a wrist accelerometer + gyroscope window (the paper's Biokin analysis).

Method: band-pass every axis to the tremor band (3–12 Hz, 4th-order Butterworth, zero phase) which removes
gravity and voluntary movement; the dominant frequency f is the peak of the summed Welch spectrum in that band;
for a sinusoidal tremor the summed variance of the band-passed axes is A²/2, so the peak acceleration is
A = sqrt(2·Σ var) and the peak displacement is X = A / (2πf)². X is scored with the MDS-UPDRS item 3.17
amplitude thresholds (≤ 1 cm → 1, 1–3 cm → 2, 3–10 cm → 3, > 10 cm → 4), below 0.15 cm counts as no tremor.
"""

from __future__ import annotations

import numpy as np

from offload.errors import TaskInputError
from offload.task_input import decode_signal
from primitives import codec

BAND_HZ = (3.0, 12.0)
MIN_SECONDS = 4.0
MAX_FRAMES = 360_000  # one hour at 100 Hz; the filter and spectrum are linear in the length
MIN_RATE_HZ = 30.0  # the band's upper edge must sit well below Nyquist
NO_TREMOR_CM = 0.15
SCORE_THRESHOLDS_CM = (1.0, 3.0, 10.0)  # upper bounds of scores 1, 2, 3


def severity_score(amplitude_cm: float) -> int:
    if amplitude_cm < NO_TREMOR_CM:
        return 0
    return 1 + sum(amplitude_cm > edge for edge in SCORE_THRESHOLDS_CM)


class TremorTask:
    """Task "tremor/1": 6 channels (acc m/s², gyro rad/s) -> MDS-UPDRS rest-tremor amplitude score."""

    @property
    def name(self) -> str:
        return "tremor/1"

    def run(self, payload: bytes) -> codec.Value:
        from scipy import signal as sps

        window = decode_signal(payload, channels=6, min_seconds=MIN_SECONDS, max_frames=MAX_FRAMES)
        fs = window.sample_rate_hz
        if fs < MIN_RATE_HZ:
            raise TaskInputError(f"tremor analysis needs at least {MIN_RATE_HZ} Hz, got {fs} Hz")
        sos = sps.butter(4, BAND_HZ, btype="bandpass", fs=fs, output="sos")
        band = sps.sosfiltfilt(sos, window.samples, axis=0)
        acc, gyro = band[:, :3], band[:, 3:]

        freqs, power = sps.welch(acc, fs=fs, nperseg=min(len(acc), int(4 * fs)), axis=0)
        spectrum = power.sum(axis=1)
        in_band = (freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1])
        peak = int(np.flatnonzero(in_band)[np.argmax(spectrum[in_band])])
        frequency = float(freqs[peak])
        if 0 < peak < len(spectrum) - 1:
            # Parabolic interpolation between spectrum bins sharpens f, which enters X squared.
            left, mid, right = spectrum[peak - 1], spectrum[peak], spectrum[peak + 1]
            denom = left - 2 * mid + right
            if denom != 0:
                frequency += float(0.5 * (left - right) / denom) * float(freqs[1] - freqs[0])

        peak_acc = float(np.sqrt(2 * acc.var(axis=0).sum()))
        amplitude_cm = peak_acc / (2 * np.pi * frequency) ** 2 * 100
        gyro_rms = float(np.sqrt(gyro.var(axis=0).sum()))
        score = severity_score(amplitude_cm)
        return {
            "severity": score,
            "amplitude_um": round(amplitude_cm * 10_000),
            "frequency_mhz": round(frequency * 1000) if score > 0 else None,
            "gyro_rms_mrad_s": round(gyro_rms * 1000),
        }
