"""The exhaustive checker: the optimum of a small offloading problem by trying all 2^N decisions.

Independent of the deciders (no solver, no heuristic): it evaluates every decision with the cost model's own
`objective` and `excess`/`tolerance`, so a decider that agrees with it is right by the definition of the problem.
Tests and benchmarks use it as ground truth for N ≤ MAX_TASKS.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from offload.costmodel import BoolArray, OffloadProblem
from offload.errors import ProblemError

MAX_TASKS = 20  # 2^20 decisions × 20 tasks is already ~160 MB of float64


@dataclass(frozen=True)
class Exhaustive:
    """The optimum (None when no decision satisfies C1–C4) and how many decisions are feasible."""

    x: BoolArray | None
    objective: float | None
    feasible_count: int


def every_decision(n: int) -> BoolArray:
    """All 2^n decisions, one per row."""
    return np.array(list(itertools.product((False, True), repeat=n)), dtype=bool).reshape(-1, n)


def brute_force(problem: OffloadProblem) -> Exhaustive:
    if problem.n > MAX_TASKS:
        raise ProblemError(f"brute force stops at {MAX_TASKS} tasks, got {problem.n}")
    every = every_decision(problem.n)
    feasible = np.all(problem.excess(every) <= problem.tolerance, axis=1)
    if not feasible.any():
        return Exhaustive(None, None, 0)
    values = np.where(feasible, problem.objective(every), np.inf)
    best = int(np.argmin(values))
    return Exhaustive(every[best].copy(), float(values[best]), int(feasible.sum()))
