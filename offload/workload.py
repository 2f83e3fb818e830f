"""Workloads for the evaluation: profile real tasks at a few window lengths, then draw task batches from them.

Profiling every one of 1000 tasks would take minutes, and the paper's design does not need it: a device keeps
profiles in its database and predicts new tasks from them. So each task kind is profiled at a handful of
window lengths (the task size D grows with the window) and a task of any other length gets costs interpolated
linearly between the two nearest profiled windows. A batch mixes both kinds with window lengths drawn
log-uniformly between 10 s and 10 min (heartpy's longest recording is 11.4 min).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import nacl.public
import numpy as np

from offload import sealed_messages
from offload.errors import ProfileError
from offload.motion import motion_window
from offload.profiler import TaskProfile, profile_task
from offload.recordings import ppg_window
from offload.task_input import encode_signal
from offload.tasks import get_task

HRV, TREMOR = "hrv/1", "tremor/1"
TASK_KINDS = (HRV, TREMOR)
WINDOW_RANGE_S = (10.0, 600.0)


def make_payload(kind: str, seconds: float, rng: np.random.Generator) -> bytes:
    """Input bytes of a `kind` task over a `seconds` window: a real PPG window or a generated motion window."""
    if kind == HRV:
        ppg = ppg_window(seconds, rng)
        return encode_signal(ppg.samples, ppg.sample_rate_hz)
    if kind == TREMOR:
        motion = motion_window(seconds, int(rng.integers(0, 5)), rng)
        return encode_signal(motion.samples, motion.sample_rate_hz)
    raise ProfileError(f"no workload for task kind {kind!r}")


def sealer(random_bytes: Callable[[int], bytes] = os.urandom) -> Callable[[bytes], bytes]:
    """The sealing a device does before offloading, with throwaway keys, for the profiler to time."""
    device, edge = nacl.public.PrivateKey.generate(), nacl.public.PrivateKey.generate()
    edge_public = bytes(edge.public_key)

    def seal(payload: bytes) -> bytes:
        request_id = random_bytes(sealed_messages.REQUEST_ID_BYTES)
        nonce = random_bytes(sealed_messages.NONCE_BYTES)
        return sealed_messages.seal_request("profile", payload, request_id, device, edge_public, nonce)

    return seal


def window_key(kind: str, seconds: float) -> str:
    return f"{kind}@{seconds:g}s"


def profile_windows(
    windows: Sequence[float], rng: np.random.Generator, *, reference_hz: float, repeats: int = 3
) -> list[TaskProfile]:
    """Profile every task kind at every window length."""
    seal = sealer()
    profiles = []
    for kind in TASK_KINDS:
        task = get_task(kind)
        for seconds in windows:
            payload = make_payload(kind, seconds, rng)
            key = window_key(kind, seconds)
            profiles.append(profile_task(key, task, payload, seal, reference_hz=reference_hz, repeats=repeats))
    return profiles


@dataclass(frozen=True)
class CostCurve:
    """One task kind's profiled figures against window length, for interpolation."""

    kind: str
    seconds: np.ndarray
    figures: np.ndarray  # (windows, 5): input_bits, local_s, local_peak, encrypt_s, encrypt_peak
    reference_hz: float

    def at(self, seconds: float, key: str) -> TaskProfile:
        bits, local_s, local_peak, encrypt_s, encrypt_peak = (
            float(np.interp(seconds, self.seconds, self.figures[:, column])) for column in range(5)
        )
        return TaskProfile(
            key=key,
            task=self.kind,
            input_bits=round(bits),
            local_s=local_s,
            local_peak_bytes=round(local_peak),
            encrypt_s=encrypt_s,
            encrypt_peak_bytes=round(encrypt_peak),
            reference_hz=self.reference_hz,
        )


def _seconds_of(profile: TaskProfile) -> float:
    return float(profile.key.rsplit("@", 1)[1].removesuffix("s"))


def cost_curves(profiles: Sequence[TaskProfile]) -> dict[str, CostCurve]:
    curves = {}
    for kind in TASK_KINDS:
        mine = sorted((p for p in profiles if p.task == kind), key=_seconds_of)
        if not mine:
            raise ProfileError(f"no profiles of {kind}")
        figures = np.array(
            [[p.input_bits, p.local_s, p.local_peak_bytes, p.encrypt_s, p.encrypt_peak_bytes] for p in mine],
            dtype=np.float64,
        )
        seconds = np.array([_seconds_of(p) for p in mine])
        curves[kind] = CostCurve(kind, seconds, figures, mine[0].reference_hz)
    return curves


def sample_batch(curves: dict[str, CostCurve], n: int, rng: np.random.Generator) -> list[TaskProfile]:
    """n predicted task profiles: random kind, window log-uniform in WINDOW_RANGE_S."""
    low, high = np.log(WINDOW_RANGE_S[0]), np.log(WINDOW_RANGE_S[1])
    kinds = rng.integers(0, len(TASK_KINDS), size=n)
    seconds = np.exp(rng.uniform(low, high, size=n))
    return [
        curves[TASK_KINDS[k]].at(float(s), f"{TASK_KINDS[k]}#{i}")
        for i, (k, s) in enumerate(zip(kinds, seconds, strict=True))
    ]
