"""The offloading cost model and problem (paper Sec. III-A), with the objective normalised.

Per task n and decision x_n (1 = offload to the edge, 0 = run locally):
  local:    T = cycles / f_l                         E = P_cpu · T                  M = peak memory of the task
  offload:  T = enc_cycles / f_l + D / r + lat + cycles / f_e
            E = P_cpu · enc_cycles / f_l + P_tx · D / r                              M = peak memory of encryption
(f = effective reference-core cycles per second of the device or edge, r = min(device, edge) uplink rate,
lat = the link's request latency, which the paper omits; energy converted to mAh with the battery voltage.)

Objective. The paper weighs time (s), energy (mAh) and memory (MB) with α = 1/3 each, but the three units
differ, so each total is divided by its all-local total before weighting:
    f(x) = Σ_k α_k · (Σ_n cost_nk(x_n)) / (Σ_n local_nk)        k ∈ {time, energy, memory}
All-local therefore scores exactly Σ α_k = 1, and f(x) = 0.8 reads "20% better than running everything
locally". Every term is linear in x: f(x) = f(0) + Σ_n x_n · c_n with c_n = Σ_k α_k (offload_nk - local_nk) / L_k.

Constraints (our reading of the paper's C1–C4), with Δ = offload - local:
    C1  total time   ≤ all-local time         Σ x_n ΔT_n ≤ 0
    C2  total energy ≤ all-local energy       Σ x_n ΔE_n ≤ 0
    C3  total time   ≤ T_max                  Σ x_n ΔT_n ≤ T_max - L_T
    C4  memory used  ≤ available memory       M_n(x_n) ≤ M_avail for every task n
The device runs its tasks one after another, so the memory in use at any moment is one task's (a task whose
local peak exceeds M_avail must be offloaded; one whose encryption would not fit must stay local). Summing
memory over a batch of 1000 tasks and comparing it with RAM would describe no real device. The objective keeps
the paper's sum Σ_n M_n: there memory is a cost, not a capacity. C1–C3 are rows of A x ≤ b; C4 fixes
variables, so the MILP encodes it as bounds.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from offload.device import DeviceProfile
from offload.errors import ProblemError
from offload.profiler import TaskProfile

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

TIME, ENERGY, MEMORY = 0, 1, 2
CONSTRAINTS = ("C1", "C2", "C3", "C4")
CONSTRAINT_MEANING = {
    "C1": "total time must not exceed the all-local time",
    "C2": "total energy must not exceed the all-local energy",
    "C3": "total time must not exceed T_max",
    "C4": "every task's memory must fit in the device's available memory",
}
EQUAL_WEIGHTS = (1 / 3, 1 / 3, 1 / 3)
# The one feasibility tolerance of the project: a constraint may be overshot by this fraction of its scale (the
# largest single-task coefficient of its row; the available memory for C4). The MILP hands HiGHS the same value
# as its feasibility tolerances on rows scaled to a largest coefficient of 1 (offload/milp.py), so an answer the
# solver accepts is an answer this checker accepts: no tolerance is added on top of another.
FEASIBILITY_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Costs:
    time_s: float
    energy_mah: float
    memory_mb: float

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.time_s, self.energy_mah, self.memory_mb)


def local_costs(profile: TaskProfile, device: DeviceProfile) -> Costs:
    seconds = profile.cycles / device.effective_hz
    return Costs(seconds, device.joules_to_mah(device.active_power_w * seconds), profile.local_peak_bytes / 1e6)


def offload_costs(profile: TaskProfile, device: DeviceProfile, edge: DeviceProfile) -> Costs:
    encrypt_s = profile.encrypt_cycles / device.effective_hz
    transfer_s = profile.input_bits / min(device.uplink_bit_s, edge.uplink_bit_s)
    edge_s = profile.cycles / edge.effective_hz
    seconds = encrypt_s + transfer_s + device.latency_s + edge_s
    joules = device.active_power_w * encrypt_s + device.tx_power_w * transfer_s
    return Costs(seconds, device.joules_to_mah(joules), profile.encrypt_peak_bytes / 1e6)


@dataclass(frozen=True, eq=False)
class OffloadProblem:
    """N tasks' local and offload costs (rows: tasks; columns: time s, energy mAh, memory MB) and the limits."""

    local: FloatArray
    offload: FloatArray
    t_max_s: float
    memory_available_mb: float
    weights: tuple[float, float, float] = field(default=EQUAL_WEIGHTS)

    def __post_init__(self) -> None:
        local, offload = np.asarray(self.local, dtype=np.float64), np.asarray(self.offload, dtype=np.float64)
        if local.ndim != 2 or local.shape[1] != 3 or local.shape != offload.shape or local.shape[0] == 0:
            raise ProblemError(f"local and offload costs must both be (N, 3) with N ≥ 1, got {local.shape}")
        if not (np.all(np.isfinite(local)) and np.all(np.isfinite(offload))) or min(local.min(), offload.min()) < 0:
            raise ProblemError("costs must be finite and non-negative")
        if len(self.weights) != 3 or min(self.weights) < 0 or sum(self.weights) <= 0:
            raise ProblemError(f"weights must be three non-negative numbers with a positive sum, got {self.weights}")
        if not (np.isfinite(self.t_max_s) and np.isfinite(self.memory_available_mb)):
            raise ProblemError("T_max and available memory must be finite")
        object.__setattr__(self, "local", local)
        object.__setattr__(self, "offload", offload)

    @classmethod
    def from_profiles(
        cls,
        profiles: list[TaskProfile],
        device: DeviceProfile,
        edge: DeviceProfile,
        t_max_s: float,
        weights: tuple[float, float, float] = EQUAL_WEIGHTS,
    ) -> OffloadProblem:
        local = np.array([local_costs(p, device).as_tuple() for p in profiles]).reshape(-1, 3)
        offload = np.array([offload_costs(p, device, edge).as_tuple() for p in profiles]).reshape(-1, 3)
        return cls(local, offload, t_max_s, device.memory_available_mb, weights)

    @property
    def n(self) -> int:
        return int(self.local.shape[0])

    @functools.cached_property
    def all_local(self) -> FloatArray:
        """Totals (time, energy, memory) when every task runs locally: the normalisers."""
        return np.asarray(self.local.sum(axis=0), dtype=np.float64)

    @functools.cached_property
    def _scale(self) -> FloatArray:
        # A zero all-local total (say, tasks that need no memory) would divide by zero; such a term then counts
        # in its own units, which is the only scale left.
        return np.where(self.all_local > 0, self.all_local, 1.0)

    @functools.cached_property
    def coefficients(self) -> FloatArray:
        """c_n: how much offloading task n changes the objective."""
        return np.asarray(((self.offload - self.local) / self._scale) @ np.asarray(self.weights), dtype=np.float64)

    @functools.cached_property
    def constant(self) -> float:
        """f(all-local)."""
        return float((self.all_local / self._scale) @ np.asarray(self.weights))

    @functools.cached_property
    def constraint_matrix(self) -> FloatArray:
        """A (3 × N): rows C1, C2, C3, so that those constraints read A x ≤ b."""
        delta = self.offload - self.local
        return np.asarray(np.stack([delta[:, TIME], delta[:, ENERGY], delta[:, TIME]]))

    @functools.cached_property
    def constraint_bounds(self) -> FloatArray:
        return np.array([0.0, 0.0, self.t_max_s - self.all_local[TIME]])

    @functools.cached_property
    def row_scale(self) -> FloatArray:
        """The scale of each of C1..C3: its row's largest |coefficient| (1 for an all-zero row)."""
        largest = np.abs(self.constraint_matrix).max(axis=1)
        return np.asarray(np.where(largest > 0, largest, 1.0), dtype=np.float64)

    @functools.cached_property
    def tolerance(self) -> FloatArray:
        """Overshoot forgiven per constraint C1..C4: FEASIBILITY_TOLERANCE times the constraint's scale."""
        rows = FEASIBILITY_TOLERANCE * self.row_scale
        return np.append(rows, FEASIBILITY_TOLERANCE * max(self.memory_available_mb, 1e-6))

    @functools.cached_property
    def must_offload(self) -> BoolArray:
        """Tasks whose local run would not fit in memory (C4 forces x_n = 1)."""
        return np.asarray(self.local[:, MEMORY] > self.memory_available_mb + self.tolerance[3])

    @functools.cached_property
    def must_stay(self) -> BoolArray:
        """Tasks whose encryption would not fit in memory (C4 forces x_n = 0)."""
        return np.asarray(self.offload[:, MEMORY] > self.memory_available_mb + self.tolerance[3])

    def totals(self, x: npt.ArrayLike) -> FloatArray:
        """(time, energy, memory) of decision x, or of each row of a (P, N) matrix of decisions."""
        chosen = np.asarray(x, dtype=np.float64)
        return np.asarray(self.all_local + chosen @ (self.offload - self.local), dtype=np.float64)

    def objective(self, x: npt.ArrayLike) -> FloatArray:
        """f(x) for one decision (a 0-d array) or for each row of a (P, N) matrix."""
        return np.asarray(self.constant + np.asarray(x, dtype=np.float64) @ self.coefficients, dtype=np.float64)

    def peak_memory(self, x: npt.ArrayLike) -> FloatArray:
        """The largest single-task memory of decision x (or of each row of a matrix)."""
        chosen = np.asarray(x, dtype=np.float64)
        per_task = self.local[:, MEMORY] + chosen * (self.offload[:, MEMORY] - self.local[:, MEMORY])
        return np.asarray(per_task.max(axis=-1), dtype=np.float64)

    def excess(self, x: npt.ArrayLike) -> FloatArray:
        """How far x overshoots C1..C4 (≤ 0 where each holds); shape (4,) or (P, 4)."""
        chosen = np.asarray(x, dtype=np.float64)
        rows = chosen @ self.constraint_matrix.T - self.constraint_bounds
        memory = self.peak_memory(chosen) - self.memory_available_mb
        return np.asarray(np.concatenate([rows, np.expand_dims(memory, -1)], axis=-1), dtype=np.float64)

    def violated(self, x: npt.ArrayLike) -> tuple[str, ...]:
        over = self.excess(x) > self.tolerance
        return tuple(name for name, bad in zip(CONSTRAINTS, over, strict=True) if bad)


@dataclass(frozen=True, eq=False)
class Decision:
    """A decider's answer: x_n per task, its totals and objective, and which constraints it breaks.

    `conflict` is non-empty only when a decider proved the instance infeasible: the smallest set of constraints
    that cannot all hold (x is then the all-local fallback). `optimality_gap` is a proven bound on how far the
    objective may lie above the optimum, relative to the objective (0 for a proven optimum; None from deciders
    that prove nothing); `time_limited` says the exact decider stopped at its time limit and x is its fallback."""

    method: str
    x: BoolArray
    time_s: float
    energy_mah: float
    memory_mb: float
    objective: float
    violated: tuple[str, ...]
    conflict: tuple[str, ...] = ()
    optimality_gap: float | None = None
    time_limited: bool = False

    @property
    def feasible(self) -> bool:
        return not self.violated and not self.conflict

    @property
    def offloaded(self) -> int:
        return int(self.x.sum())

    def explain(self) -> str:
        if self.conflict:
            meanings = "; ".join(CONSTRAINT_MEANING[name] for name in self.conflict)
            return f"infeasible instance: {' + '.join(self.conflict)} cannot hold together ({meanings})"
        stopped = "the solver stopped at its time limit; " if self.time_limited else ""
        if self.violated:
            return stopped + "violates " + ", ".join(f"{c} ({CONSTRAINT_MEANING[c]})" for c in self.violated)
        if self.time_limited and self.optimality_gap is not None:
            return f"feasible; {stopped}within {100 * self.optimality_gap:.3g} % of the optimum"
        return "feasible"


def evaluate(
    problem: OffloadProblem,
    x: npt.ArrayLike,
    method: str,
    conflict: tuple[str, ...] = (),
    *,
    optimality_gap: float | None = None,
    time_limited: bool = False,
) -> Decision:
    chosen = np.asarray(x).astype(bool)
    if chosen.shape != (problem.n,):
        raise ProblemError(f"a decision has one entry per task ({problem.n}), got shape {chosen.shape}")
    time_s, energy, memory = problem.totals(chosen)
    return Decision(
        method=method,
        x=chosen,
        time_s=float(time_s),
        energy_mah=float(energy),
        memory_mb=float(memory),
        objective=float(problem.objective(chosen)),
        violated=problem.violated(chosen),
        conflict=conflict,
        optimality_gap=optimality_gap,
        time_limited=time_limited,
    )
