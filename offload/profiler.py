"""The task profile module (paper Sec. III-A): run a task, measure its time and peak memory.

The paper's profile of a task is [D_n, E_n, T_n, M_n]. E and T depend on the machine, so what we store is
machine-neutral: D (input bits), the measured time together with the clock of the reference core it ran on
(so cycles = time × reference_hz, the paper's D·c), and peak memory; the device model turns that into T, E and
M for any device (offload/costmodel.py). The encryption an offload needs is profiled the same way.

Time is **CPU time** of the measuring thread (`time.thread_time`), the median over repeats: wall time on a
shared machine measures the machine's load as much as the task (the 10-minute heart-rate window measured
0.47–0.90 s of wall time under load, 0.21–0.38 s of CPU time, and the experiment's conclusions moved with it).
Wall time is kept beside it (median too), with the spread of the CPU repeats (max − min) and the machine's
1-minute load average at the time, so a profile says how much to trust it. Memory is the peak Python and numpy
heap seen by tracemalloc in a separate run, because tracing slows the code it watches.
"""

from __future__ import annotations

import os
import statistics
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
    local_s: float  # CPU time of one run on the reference core (median over repeats)
    local_peak_bytes: int
    encrypt_s: float  # CPU time of sealing the input for the edge, on the reference core (median)
    encrypt_peak_bytes: int
    reference_hz: float
    local_wall_s: float | None = None  # wall time of one run (median), for comparison; None if not measured
    encrypt_wall_s: float | None = None
    local_spread_s: float = 0.0  # max − min of the CPU-time repeats of the task
    repeats: int = 1
    load_1m: float | None = None  # the machine's 1-minute load average when it was measured

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
                local_wall_s=_optional_float(value.get("local_wall_s")),
                encrypt_wall_s=_optional_float(value.get("encrypt_wall_s")),
                local_spread_s=float(value.get("local_spread_s", 0.0)),
                repeats=int(value.get("repeats", 1)),
                load_1m=_optional_float(value.get("load_1m")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProfileError(f"malformed stored task profile: {exc}") from exc
        numbers = (profile.input_bits, profile.local_s, profile.local_peak_bytes, profile.encrypt_s)
        if min(numbers) < 0 or profile.reference_hz <= 0 or profile.local_spread_s < 0 or profile.repeats < 1:
            raise ProfileError(f"stored task profile {profile.key!r} has negative or zero figures")
        return profile


def _optional_float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Timing:
    """Repeated runs of one action: median CPU and wall seconds, and the spread (max − min) of the CPU times."""

    cpu_s: float
    wall_s: float
    cpu_spread_s: float


def measure_times(
    action: Callable[[], object],
    repeats: int,
    clock: Clock = time.perf_counter,
    cpu_clock: Clock = time.thread_time,
) -> Timing:
    """Run `action` `repeats` times; CPU time of this thread and wall time of each run, medians and spread."""
    cpu, wall = [], []
    for _ in range(max(1, repeats)):
        wall_start, cpu_start = clock(), cpu_clock()
        action()
        cpu.append(cpu_clock() - cpu_start)
        wall.append(clock() - wall_start)
    return Timing(statistics.median(cpu), statistics.median(wall), max(cpu) - min(cpu))


def load_average() -> float | None:
    """The 1-minute load average (None where the platform has none)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


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
    cpu_clock: Clock = time.thread_time,
    load: Callable[[], float | None] = load_average,
) -> TaskProfile:
    """Profile `task` on `payload` and the sealing (`encrypt`) an offload of it would need."""
    # One untimed run first: the first call of a task imports its libraries and fills caches, which would
    # otherwise be billed to the task's time and memory.
    task.run(payload)
    encrypt(payload)
    machine_load = load()
    local = measure_times(lambda: task.run(payload), repeats, clock, cpu_clock)
    sealing = measure_times(lambda: encrypt(payload), repeats, clock, cpu_clock)
    return TaskProfile(
        key=key,
        task=task.name,
        input_bits=8 * len(payload),
        local_s=local.cpu_s,
        local_peak_bytes=measure_peak_bytes(lambda: task.run(payload)),
        encrypt_s=sealing.cpu_s,
        encrypt_peak_bytes=measure_peak_bytes(lambda: encrypt(payload)),
        reference_hz=reference_hz,
        local_wall_s=local.wall_s,
        encrypt_wall_s=sealing.wall_s,
        local_spread_s=local.cpu_spread_s,
        repeats=max(1, repeats),
        load_1m=machine_load,
    )
