"""Deciders behind one interface: given a problem and an RNG, return a `Decision` (paper Sec. III-A "decision").

`MilpDecider` (exact, the default) solves the 0/1 programme with scipy's HiGHS branch and bound; the paper's
PSO is `offload.pso.PsoDecider`; the baselines are all-local, all-offload, greedy and uniformly random. Every
decider returns its answer evaluated against C1–C4: baselines may return infeasible answers and say so; the
exact decider proves infeasibility and names the smallest set of constraints that conflict.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from offload.costmodel import CONSTRAINTS, BoolArray, Decision, FloatArray, OffloadProblem, evaluate
from offload.heuristics import greedy, improve


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


@dataclass(frozen=True)
class _Model:
    """The 0/1 programme for a subset of the constraints, scaled for HiGHS: min c·x, A x ≤ b, lower ≤ x ≤ upper."""

    cost: FloatArray
    matrix: FloatArray | None
    limit: FloatArray | None
    lower: FloatArray
    upper: FloatArray


def _model(problem: OffloadProblem, names: tuple[str, ...]) -> _Model | None:
    """The model of the named constraints, or None when their variable bounds already contradict (C4)."""
    rows = [CONSTRAINTS.index(name) for name in names if name != "C4"]
    lower, upper = np.zeros(problem.n), np.ones(problem.n)
    if "C4" in names:
        # C4 fixes variables (offload/costmodel.py): a task that fits only one way is bounded to that way.
        lower[problem.must_offload] = 1.0
        upper[problem.must_stay] = 0.0
        if np.any(lower > upper):
            return None
    if "C1" in names and "C3" in names:
        # C1 and C3 bound the same sum (total time): the looser one is implied by the other.
        rows.remove(2 if problem.constraint_bounds[2] >= problem.constraint_bounds[0] else 0)
    matrix = limit = None
    if rows:
        matrix = problem.constraint_matrix[rows]
        limit = problem.constraint_bounds[rows] + problem.tolerance[rows]
        # Costs are seconds and mAh of single tasks (1e-4 and smaller); HiGHS warns about such magnitudes and
        # slows down, so each row and the objective are scaled to a largest entry of 1 (same optimum).
        row_scale = np.abs(matrix).max(axis=1)
        row_scale[row_scale == 0] = 1.0
        matrix, limit = matrix / row_scale[:, None], limit / row_scale
    cost_scale = float(np.abs(problem.coefficients).max()) or 1.0
    return _Model(problem.coefficients / cost_scale, matrix, limit, lower, upper)


def _solve_model(model: _Model, mip_rel_gap: float) -> BoolArray | None:
    from scipy.optimize import Bounds, LinearConstraint, milp

    # Hand HiGHS only the variables still free; the fixed ones move into the right-hand side.
    free = model.upper > model.lower
    x = model.lower.copy()
    if not free.any():
        feasible = model.matrix is None or model.limit is None or bool(np.all(model.matrix @ x <= model.limit))
        return np.asarray(x, dtype=bool) if feasible else None
    constraints = []
    if model.matrix is not None and model.limit is not None:
        rest = model.limit - model.matrix[:, ~free] @ x[~free]
        constraints.append(LinearConstraint(model.matrix[:, free], -np.inf, rest))
    result = milp(
        c=model.cost[free],
        integrality=np.ones(int(free.sum())),
        bounds=Bounds(model.lower[free], model.upper[free]),
        constraints=constraints,
        options={"mip_rel_gap": mip_rel_gap},
    )
    if result.x is None:
        return None
    x[free] = np.round(result.x)
    return np.asarray(x, dtype=bool)


def _solve(problem: OffloadProblem, names: tuple[str, ...], mip_rel_gap: float) -> BoolArray | None:
    """An optimal x subject to the named constraints, or None when they cannot all hold."""
    model = _model(problem, names)
    return None if model is None else _solve_model(model, mip_rel_gap)


def _relaxation(model: _Model) -> Any:
    """The LP relaxation (scipy's HiGHS result), or None when it could not be solved."""
    from scipy.optimize import linprog

    lp = linprog(
        model.cost,
        A_ub=model.matrix,
        b_ub=model.limit,
        bounds=np.stack([model.lower, model.upper], axis=1),
        method="highs",
    )
    return lp if lp.status == 0 else None


def _rounded(problem: OffloadProblem, lp_x: FloatArray) -> BoolArray | None:
    """The best feasible rounding of the LP optimum, improved by single flips. A basic LP optimum has at most
    one fractional variable per constraint row, so every rounding of those few is tried."""
    fractional = np.flatnonzero((lp_x > 1e-9) & (lp_x < 1 - 1e-9))
    base = lp_x >= 1 - 1e-9
    best: BoolArray | None = None
    if len(fractional) > 4:
        return None
    for bits in itertools.product((False, True), repeat=len(fractional)):
        candidate = base.copy()
        candidate[fractional] = bits
        if problem.violated(candidate):
            continue
        candidate = improve(problem, candidate)
        if best is None or problem.objective(candidate) < problem.objective(best):
            best = candidate
    return best


def _fix_by_reduced_costs(model: _Model, lp: Any, incumbent: BoolArray) -> _Model:
    """Fix every variable whose LP reduced cost proves it takes its LP value in any solution better than the
    incumbent (reduced-cost fixing: moving x_j off its bound raises the LP bound by at least |d_j|, so if
    LP + |d_j| exceeds the incumbent's objective, no better solution moves x_j)."""
    room = float(model.cost @ incumbent) - float(lp.fun)
    margin = 1e-9 * (1.0 + abs(float(lp.fun)))
    at_zero = (lp.x <= 1e-9) & (lp.lower.marginals > room + margin)
    at_one = (lp.x >= 1 - 1e-9) & (-lp.upper.marginals > room + margin)
    upper, lower = model.upper.copy(), model.lower.copy()
    upper[at_zero] = 0.0
    lower[at_one] = 1.0
    return _Model(model.cost, model.matrix, model.limit, lower, upper)


def find_conflict(problem: OffloadProblem) -> tuple[str, ...]:
    """The smallest set of constraints with no common solution (empty if the instance is feasible)."""
    for size in range(1, len(CONSTRAINTS) + 1):
        for names in itertools.combinations(CONSTRAINTS, size):
            if _solve(problem, names, 1e-4) is None:
                return names
    return ()


class MilpDecider:
    """The exact optimum of the 0/1 programme (HiGHS via scipy.optimize.milp).

    For 200 tasks or more, the LP relaxation is solved first; its rounding (or else the greedy answer), improved
    by single flips, is an incumbent, and the LP's reduced costs fix every task whose side that incumbent already
    settles (`_fix_by_reduced_costs`); branch and bound then runs on the tasks left. The answer stays exact.
    `mip_rel_gap` is HiGHS's stopping gap; the default 1e-6 makes
    answers optimal to well below the precision of the measured costs."""

    name = "milp"

    # Below this many tasks HiGHS alone is quicker than the LP plus the heuristics that prepare the reduction.
    REDUCE_FROM = 200

    def __init__(self, mip_rel_gap: float = 1e-6, reduce: bool = True) -> None:
        self._gap = mip_rel_gap
        self._reduce = reduce

    def decide(self, problem: OffloadProblem, rng: np.random.Generator) -> Decision:
        model = _model(problem, CONSTRAINTS)
        x = None if model is None else self._optimum(problem, model)
        if x is None:
            return evaluate(problem, np.zeros(problem.n, dtype=bool), self.name, conflict=find_conflict(problem))
        return evaluate(problem, x, self.name)

    def _optimum(self, problem: OffloadProblem, model: _Model) -> BoolArray | None:
        if not self._reduce or problem.n < self.REDUCE_FROM:
            return _solve_model(model, self._gap)
        lp = _relaxation(model)
        if lp is None:
            return _solve_model(model, self._gap)
        incumbent = _rounded(problem, lp.x)
        if incumbent is None:
            incumbent = improve(problem, greedy(problem))
            if problem.violated(incumbent):
                return _solve_model(model, self._gap)
        better = _solve_model(_fix_by_reduced_costs(model, lp, incumbent), self._gap)
        if better is None or model.cost @ better >= model.cost @ incumbent:
            return incumbent  # nothing beats the incumbent, so it is optimal
        return better


def baselines() -> list[Decider]:
    return [AllLocal(), AllOffload(), GreedyDecider(), RandomDecider()]
