"""Seeded random offloading problems for tests and benchmarks, with families in which a constraint binds.

`random_problem`: each task gets a local time in [0.01, 1] s, local energy from a 1–3 W CPU on a 3.85 V battery,
local memory in [1, 50] MB; offloading scales time by U(0.3, 1.6), energy by U(0.2, 1.5) and memory by
U(0.01, 0.5), so some tasks are better offloaded, some are not, and most trade one quantity for another.

`binding_problem(n, family, rng)`: instances in which constraint `family` changes the answer — the decision that
offloads every task with a negative objective coefficient (the optimum without constraints) breaks it (C1, C2,
C3), or memory forces offloads the objective would not choose (C4). These are the instances on which a decider
can be trapped: the unconstrained optimum is out of reach and the constrained one needs a trade-off, e.g.
C1-binding, where most offloads save energy and memory but cost time and only a few save time to pay for them.
Draws are rejected until the family's constraint binds, so the generator is deterministic for a seeded RNG.
"""

from __future__ import annotations

import numpy as np

from offload.costmodel import EQUAL_WEIGHTS, OffloadProblem
from offload.errors import ProblemError

FAMILIES = ("C1", "C2", "C3", "C4")
_BATTERY_V = 3.85


def random_problem(
    n: int,
    rng: np.random.Generator,
    *,
    t_max_fraction: float = 1.0,
    memory_available_mb: float = 1e6,
    weights: tuple[float, float, float] = EQUAL_WEIGHTS,
) -> OffloadProblem:
    """n tasks; T_max = t_max_fraction × all-local time (below 1, C3 binds harder than C1)."""
    local_time = rng.uniform(0.01, 1.0, n)
    local_energy = local_time * rng.uniform(1.0, 3.0, n) / (_BATTERY_V * 3.6)
    local_memory = rng.uniform(1.0, 50.0, n)
    local = np.stack([local_time, local_energy, local_memory], axis=1)
    offload = local * np.stack([rng.uniform(0.3, 1.6, n), rng.uniform(0.2, 1.5, n), rng.uniform(0.01, 0.5, n)], axis=1)
    return OffloadProblem(local, offload, t_max_fraction * float(local_time.sum()), memory_available_mb, weights)


def _factors(n: int, rng: np.random.Generator, good: tuple[float, float], bad: tuple[float, float]) -> np.ndarray:
    """Per-task offload/local ratios: a random share of tasks draw from `good` (offloading saves), the rest from
    `bad` (offloading costs)."""
    helpful = rng.random(n) < rng.uniform(0.15, 0.5)
    return np.where(helpful, rng.uniform(*good, n), rng.uniform(*bad, n))


def _draw(n: int, family: str, rng: np.random.Generator) -> OffloadProblem:
    local_time = rng.uniform(0.05, 1.0, n)
    local_energy = local_time * rng.uniform(1.0, 3.0, n) / (_BATTERY_V * 3.6)
    local_memory = rng.uniform(1.0, 50.0, n)
    time_f, energy_f, memory_f = rng.uniform(0.7, 1.3, n), rng.uniform(0.7, 1.3, n), rng.uniform(0.05, 0.6, n)
    t_max = float(local_time.sum())
    memory_available = 1e6
    if family in ("C1", "C4"):
        # Offloading mostly saves energy and memory but costs time; a few offloads save time and pay for others.
        time_f = _factors(n, rng, (0.5, 0.95), (1.02, 1.6))
        energy_f = rng.uniform(0.2, 0.9, n)
        if family == "C4":
            # Memory forces the largest tasks off the device, and their large inputs make offloading them cost
            # time and energy: the objective would keep them, and the time they take must be paid for (C1).
            memory_available = float(np.quantile(local_memory, rng.uniform(0.7, 0.95)))
            forced = local_memory > memory_available
            time_f = np.where(forced, rng.uniform(1.0, 1.08, n), time_f)
            energy_f = np.where(forced, rng.uniform(1.0, 1.6, n), energy_f)
    elif family == "C2":
        # Offloading saves time and memory but the radio costs energy; a few offloads save energy.
        time_f = rng.uniform(0.3, 0.9, n)
        energy_f = _factors(n, rng, (0.4, 0.95), (1.02, 1.8))
    elif family == "C3":
        # A deadline below the all-local time: time-saving offloads are needed, and they cost energy.
        time_f = _factors(n, rng, (0.3, 0.8), (1.0, 1.4))
        energy_f = np.where(time_f < 1, rng.uniform(1.0, 1.6, n), rng.uniform(0.3, 0.9, n))
        # Between the fastest possible total (every task on its faster side) and the all-local one.
        fastest = float((local_time * np.minimum(time_f, 1.0)).sum())
        t_max = fastest + float(rng.uniform(0.2, 0.8)) * (t_max - fastest)
    else:
        raise ProblemError(f"unknown constraint family {family!r}; known: {', '.join(FAMILIES)}")
    local = np.stack([local_time, local_energy, local_memory], axis=1)
    offload = local * np.stack([time_f, energy_f, memory_f], axis=1)
    return OffloadProblem(local, offload, t_max, memory_available)


def binds(problem: OffloadProblem, family: str) -> bool:
    """Whether constraint `family` changes the unconstrained optimum of `problem`."""
    if family == "C4":
        return bool(np.any(problem.must_offload & (problem.coefficients > 0)))
    return family in problem.violated(problem.coefficients < 0)


def binding_problem(n: int, family: str, rng: np.random.Generator, *, attempts: int = 1000) -> OffloadProblem:
    """A seeded n-task instance in which constraint `family` (C1..C4) binds."""
    if n < 1:
        raise ProblemError("an instance has at least one task")
    for _ in range(attempts):
        problem = _draw(n, family, rng)
        if binds(problem, family):
            return problem
    raise ProblemError(f"no {family}-binding instance of {n} tasks in {attempts} draws")
