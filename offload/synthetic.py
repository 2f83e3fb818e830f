"""Seeded random offloading problems for tests and benchmarks, with knobs that make constraints bind.

Each task gets a local time in [0.01, 1] s, local energy from a 1–3 W CPU on a 3.85 V battery, local memory
in [1, 50] MB; offloading scales time by U(0.3, 1.6), energy by U(0.2, 1.5) and memory by U(0.01, 0.5), so
some tasks are better offloaded, some are not, and most trade one quantity for another.
"""

from __future__ import annotations

import numpy as np

from offload.costmodel import EQUAL_WEIGHTS, OffloadProblem


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
    local_energy = local_time * rng.uniform(1.0, 3.0, n) / (3.85 * 3.6)
    local_memory = rng.uniform(1.0, 50.0, n)
    local = np.stack([local_time, local_energy, local_memory], axis=1)
    offload = local * np.stack([rng.uniform(0.3, 1.6, n), rng.uniform(0.2, 1.5, n), rng.uniform(0.01, 0.5, n)], axis=1)
    return OffloadProblem(local, offload, t_max_fraction * float(local_time.sum()), memory_available_mb, weights)
