"""Deciders behind one interface: given a problem and an RNG, return a `Decision` (paper Sec. III-A "decision").

`MilpDecider` (exact, the default) solves the 0/1 programme with scipy's HiGHS branch and bound; the paper's
PSO is `offload.pso.PsoDecider`; the baselines are all-local, all-offload, greedy and uniformly random. Every
decider returns its answer evaluated against C1–C4: baselines may return infeasible answers and say so; the
exact decider proves infeasibility and names the smallest set of constraints that conflict.
"""

from __future__ import annotations

import itertools
from typing import Protocol

import numpy as np

from offload.costmodel import CONSTRAINTS, Decision, OffloadProblem, evaluate
from offload.heuristics import greedy


class Decider(Protocol):
    @property
    def name(self) -> str: ...

    def decide(self, problem: OffloadProblem, rng: np.random.Generator) -> Decision: ...


class AllLocal:
    name = "all-local"

    def decide(self, problem: OffloadProblem, rng: np.random.Generator) -> Decision:
        return evaluate(problem, np.zeros(problem.n, dtype=bool), self.name)


class AllOffload:
    name = "all-offload"

    def decide(self, problem: OffloadProblem, rng: np.random.Generator) -> Decision:
        return evaluate(problem, np.ones(problem.n, dtype=bool), self.name)


class RandomDecider:
    """Each task offloaded with probability 1/2, constraints ignored (a floor for the others)."""

    name = "random"

    def decide(self, problem: OffloadProblem, rng: np.random.Generator) -> Decision:
        return evaluate(problem, rng.random(problem.n) < 0.5, self.name)


class GreedyDecider:
    name = "greedy"

    def decide(self, problem: OffloadProblem, rng: np.random.Generator) -> Decision:
        return evaluate(problem, greedy(problem), self.name)


def _solve(problem: OffloadProblem, names: tuple[str, ...], mip_rel_gap: float) -> np.ndarray | None:
    """An optimal x subject to the named constraints, or None when they cannot all hold."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    rows = [CONSTRAINTS.index(name) for name in names if name != "C4"]
    lower, upper = np.zeros(problem.n), np.ones(problem.n)
    if "C4" in names:
        # C4 fixes variables (offload/costmodel.py): a task that fits only one way is bounded to that way.
        lower[problem.must_offload] = 1.0
        upper[problem.must_stay] = 0.0
        if np.any(lower > upper):
            return None
    constraints = []
    if "C1" in names and "C3" in names:
        # C1 and C3 bound the same sum (total time): the looser one is implied by the other.
        rows.remove(2 if problem.constraint_bounds[2] >= problem.constraint_bounds[0] else 0)
    if rows:
        matrix = problem.constraint_matrix[rows]
        limit = problem.constraint_bounds[rows] + problem.tolerance[rows]
        # Costs are seconds and mAh of single tasks (1e-4 and smaller); HiGHS warns about such magnitudes and
        # slows down, so each row and the objective are scaled to a largest entry of 1 (same optimum).
        row_scale = np.abs(matrix).max(axis=1)
        row_scale[row_scale == 0] = 1.0
        constraints.append(LinearConstraint(matrix / row_scale[:, None], -np.inf, limit / row_scale))
    cost_scale = float(np.abs(problem.coefficients).max()) or 1.0
    result = milp(
        c=problem.coefficients / cost_scale,
        integrality=np.ones(problem.n),
        bounds=Bounds(lower, upper),
        constraints=constraints,
        options={"mip_rel_gap": mip_rel_gap},
    )
    if result.x is None:
        return None
    return np.asarray(np.round(result.x), dtype=bool)


def find_conflict(problem: OffloadProblem) -> tuple[str, ...]:
    """The smallest set of constraints with no common solution (empty if the instance is feasible)."""
    for size in range(1, len(CONSTRAINTS) + 1):
        for names in itertools.combinations(CONSTRAINTS, size):
            if _solve(problem, names, 1e-4) is None:
                return names
    return ()


class MilpDecider:
    """The exact optimum of the 0/1 programme (HiGHS via scipy.optimize.milp).

    `mip_rel_gap` is HiGHS's stopping gap; the default 1e-6 makes answers optimal to well below the precision of
    the measured costs."""

    name = "milp"

    def __init__(self, mip_rel_gap: float = 1e-6) -> None:
        self._gap = mip_rel_gap

    def decide(self, problem: OffloadProblem, rng: np.random.Generator) -> Decision:
        x = _solve(problem, CONSTRAINTS, self._gap)
        if x is None:
            return evaluate(problem, np.zeros(problem.n, dtype=bool), self.name, conflict=find_conflict(problem))
        return evaluate(problem, x, self.name)


def baselines() -> list[Decider]:
    return [AllLocal(), AllOffload(), GreedyDecider(), RandomDecider()]
