"""A documented, seeded generator of wrist accelerometer + gyroscope windows with rest tremor.

The paper's workload is Biokin sensor data (accelerometer + gyroscope time series rated for movement-disorder
severity); no such recording ships in any package we can install, so this generator stands in. The model:
  - tremor: a sinusoidal displacement X·sin(2π f t) along a random direction, f ~ U(4, 6) Hz (the rest-tremor
    band of Parkinson's disease), slow ±2% frequency drift and ±10% amplitude modulation; its acceleration
    is -(2πf)² times the displacement;
  - the peak displacement X is drawn uniformly inside the band of the requested MDS-UPDRS item 3.17 rest-tremor
    amplitude score (1: ≤ 1 cm, 2: 1–3 cm, 3: 3–10 cm, 4: > 10 cm), with margins so that each class is
    recognisable; score 0 has no tremor;
  - gravity (9.81 m/s²) along a slowly rotating direction, voluntary arm movement below 1 Hz, and white sensor
    noise (σ 0.05 m/s², 0.01 rad/s);
  - gyroscope: the same tremor as a rotation about a random axis at a 10 cm lever arm, plus slow rotation.
Channels are acc x, y, z (m/s²) then gyro x, y, z (rad/s); every number comes from the given RNG.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from offload.errors import TaskInputError
from offload.task_input import FloatArray

GRAVITY = 9.81
LEVER_ARM_M = 0.10
DEFAULT_RATE_HZ = 100.0
# Peak displacement bands (cm) per MDS-UPDRS 3.17 amplitude score, kept inside the clinical thresholds.
SEVERITY_AMPLITUDE_CM: dict[int, tuple[float, float]] = {
    0: (0.0, 0.0),
    1: (0.3, 0.9),
    2: (1.2, 2.7),
    3: (3.5, 9.0),
    4: (11.0, 15.0),
}


@dataclass(frozen=True)
class MotionWindow:
    samples: FloatArray  # (frames, 6)
    sample_rate_hz: float
    severity: int
    amplitude_cm: float
    frequency_hz: float


def _unit(rng: np.random.Generator) -> FloatArray:
    v = rng.normal(size=3)
    return np.asarray(v / np.linalg.norm(v), dtype=np.float64)


def motion_window(
    seconds: float, severity: int, rng: np.random.Generator, sample_rate_hz: float = DEFAULT_RATE_HZ
) -> MotionWindow:
    """A window of 6-axis motion data with the given tremor severity score (0–4)."""
    if severity not in SEVERITY_AMPLITUDE_CM:
        raise TaskInputError(f"severity is an MDS-UPDRS score 0..4, not {severity}")
    frames = round(seconds * sample_rate_hz)
    if frames <= 0:
        raise TaskInputError("a motion window needs a positive length")
    t = np.arange(frames) / sample_rate_hz
    low, high = SEVERITY_AMPLITUDE_CM[severity]
    amplitude_m = float(rng.uniform(low, high)) / 100
    frequency = float(rng.uniform(4.0, 6.0))

    drift = 1 + 0.02 * np.sin(2 * np.pi * 0.05 * t + rng.uniform(0, 2 * np.pi))
    phase = 2 * np.pi * frequency * np.cumsum(drift) / sample_rate_hz
    envelope = amplitude_m * (1 + 0.1 * np.sin(2 * np.pi * 0.2 * t + rng.uniform(0, 2 * np.pi)))
    omega = 2 * np.pi * frequency
    tremor_acc = -(omega**2) * envelope * np.sin(phase)
    tremor_gyro = omega * envelope / LEVER_ARM_M * np.cos(phase)

    tilt = _unit(rng)
    wobble = 0.2 * np.stack([np.sin(2 * np.pi * 0.1 * t), np.cos(2 * np.pi * 0.07 * t), np.zeros_like(t)], axis=1)
    down = tilt + wobble
    gravity = GRAVITY * down / np.linalg.norm(down, axis=1, keepdims=True)

    voluntary = np.zeros((frames, 3))
    for _ in range(2):
        voluntary += np.outer(np.sin(2 * np.pi * rng.uniform(0.2, 1.0) * t + rng.uniform(0, 2 * np.pi)), _unit(rng))
    voluntary *= 0.3

    acc = gravity + voluntary + np.outer(tremor_acc, _unit(rng)) + rng.normal(0, 0.05, size=(frames, 3))
    slow_turn = 0.2 * np.outer(np.sin(2 * np.pi * 0.3 * t), _unit(rng))
    gyro = np.outer(tremor_gyro, _unit(rng)) + slow_turn + rng.normal(0, 0.01, size=(frames, 3))
    return MotionWindow(
        samples=np.concatenate([acc, gyro], axis=1),
        sample_rate_hz=sample_rate_hz,
        severity=severity,
        amplitude_cm=amplitude_m * 100,
        frequency_hz=frequency,
    )
