"""The task profile module (paper Sec. III-A): run a task, measure its time and peak memory.

The paper's profile of a task is [D_n, E_n, T_n, M_n]. E and T depend on the machine, so what we store is
machine-neutral: D (input bits), the measured wall time together with the clock of the reference core it ran
on (so cycles = wall × reference_hz, the paper's D·c), and peak memory; the device model turns that into
T, E and M for any device (offload/costmodel.py). The encryption an offload needs is profiled the same way.

Time is the minimum over repeats (the least-disturbed run on a shared machine); memory is the peak Python and
numpy heap seen by tracemalloc in a separate run, because tracing slows the code it watches.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from dataclasses import asdict, dataclass

from offload.errors import ProfileError
from offload.tasks import Task

Clock = Callable[[], float]


@dataclass(frozen=True)
class TaskProfile:
    key: str  # what the store files it under, e.g. "hrv/1@60s"
    task: str
    input_bits: int  # D_n
    local_s: float  # wall time of one run on the reference core
    local_peak_bytes: int
    encrypt_s: float  # wall time of sealing the input for the edge, on the reference core
    encrypt_peak_bytes: int
    reference_hz: float

    @property
    def cycles(self) -> float:
        """Reference-core cycles of one run (the paper's D_n · c_n)."""
        return self.local_s * self.reference_hz

    @property
    def encrypt_cycles(self) -> float:
        return self.encrypt_s * self.reference_hz

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, value: object) -> TaskProfile:
        if not isinstance(value, dict):
            raise ProfileError("a stored task profile must be an object")
        try:
            profile = cls(
                key=str(value["key"]),
                task=str(value["task"]),
                input_bits=int(value["input_bits"]),
                local_s=float(value["local_s"]),
                local_peak_bytes=int(value["local_peak_bytes"]),
                encrypt_s=float(value["encrypt_s"]),
                encrypt_peak_bytes=int(value["encrypt_peak_bytes"]),
                reference_hz=float(value["reference_hz"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProfileError(f"malformed stored task profile: {exc}") from exc
        numbers = (profile.input_bits, profile.local_s, profile.local_peak_bytes, profile.encrypt_s)
        if min(numbers) < 0 or profile.reference_hz <= 0:
            raise ProfileError(f"stored task profile {profile.key!r} has negative or zero figures")
        return profile


def measure_seconds(action: Callable[[], object], repeats: int, clock: Clock = time.perf_counter) -> float:
    """Minimum wall time of `repeats` runs of `action`."""
    best = float("inf")
    for _ in range(max(1, repeats)):
        start = clock()
        action()
        best = min(best, clock() - start)
    return best


def measure_peak_bytes(action: Callable[[], object]) -> int:
    """Peak bytes allocated while `action` runs (tracemalloc; numpy reports its buffers to it)."""
    already = tracemalloc.is_tracing()
    if not already:
        tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        action()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not already:
            tracemalloc.stop()
    return max(0, peak - base)


def profile_task(
    key: str,
    task: Task,
    payload: bytes,
    encrypt: Callable[[bytes], bytes],
    *,
    reference_hz: float,
    repeats: int = 3,
    clock: Clock = time.perf_counter,
) -> TaskProfile:
    """Profile `task` on `payload` and the sealing (`encrypt`) an offload of it would need."""
    # One untimed run first: the first call of a task imports its libraries and fills caches, which would
    # otherwise be billed to the task's time and memory.
    task.run(payload)
    encrypt(payload)
    return TaskProfile(
        key=key,
        task=task.name,
        input_bits=8 * len(payload),
        local_s=measure_seconds(lambda: task.run(payload), repeats, clock),
        local_peak_bytes=measure_peak_bytes(lambda: task.run(payload)),
        encrypt_s=measure_seconds(lambda: encrypt(payload), repeats, clock),
        encrypt_peak_bytes=measure_peak_bytes(lambda: encrypt(payload)),
        reference_hz=reference_hz,
    )
