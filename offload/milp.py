"""The exact decider: the 0/1 programme of offload/costmodel.py solved by HiGHS (scipy.optimize.milp).

Two guarantees besides exactness:
* **A time limit with a documented fallback.** Branch and bound on a strongly correlated knapsack can take
  seconds to minutes (an N = 1000 workload instance took 54 s of CPU). HiGHS stops at the limit (wall clock);
  the decider then takes HiGHS's best incumbent, or the greedy answer when HiGHS has none, repairs it to
  feasibility and improves it by single flips (offload/heuristics.py), keeps the better one, and reports how far
  it may be from the optimum: `optimality_gap` = (objective − proven lower bound) / objective, the bound being
  HiGHS's dual bound or, without one, the LP relaxation's. `Decision.time_limited` is set.
* **One feasibility tolerance.** HiGHS gets the constraint limits as they are (no slack added) on rows scaled to
  a largest coefficient of 1, and its feasibility tolerances set to `costmodel.FEASIBILITY_TOLERANCE`: the
  overshoot it may accept is exactly what `OffloadProblem.violated` forgives (that tolerance times the row's
  largest coefficient). Every answer is checked again with the project's checker; one that fails anyway (the
  solver's integrality rounding) is repaired like a fallback, never returned infeasible.
"""

from __future__ import annotations

import itertools
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from offload.costmodel import (
    CONSTRAINTS,
    FEASIBILITY_TOLERANCE,
    BoolArray,
    Decision,
    FloatArray,
    OffloadProblem,
    evaluate,
)
from offload.heuristics import greedy, improve, overshoot, repair

# A phone deciding a batch should not wait longer than this; every instance of the experiment but its hardest
# N = 1000 ones is solved exactly well within it (docs/OFFLOAD.md, "Deciders").
DEFAULT_TIME_LIMIT_S = 2.0
# HiGHS options naming the tolerance the project's checker uses (scipy passes options it does not know verbatim).
_TOLERANCE_OPTIONS = {
    "mip_feasibility_tolerance": FEASIBILITY_TOLERANCE,
    "primal_feasibility_tolerance": FEASIBILITY_TOLERANCE,
}
OPTIMAL, INFEASIBLE, STOPPED = "optimal", "infeasible", "stopped"


@dataclass(frozen=True)
class _Model:
    """The 0/1 programme for a subset of the constraints, scaled for HiGHS: min c·x, A x ≤ b, lower ≤ x ≤ upper.
    f(x) = problem.constant + cost_scale · c·x."""

    cost: FloatArray
    cost_scale: float
    matrix: FloatArray | None
    limit: FloatArray | None
    lower: FloatArray
    upper: FloatArray


@dataclass(frozen=True)
class _Solved:
    """What a solve established: the best x found (None if none), OPTIMAL / INFEASIBLE / STOPPED, and a lower
    bound on c·x over the model (None when unknown)."""

    x: BoolArray | None
    status: str
    bound: float | None


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
        # Costs are seconds and mAh of single tasks (1e-4 and smaller); HiGHS warns about such magnitudes and
        # slows down, so each row is scaled to a largest entry of 1 — the scale in which the shared tolerance is
        # defined — and the limits are the bounds themselves: the tolerance is HiGHS's to apply, once.
        scale = problem.row_scale[rows]
        matrix = problem.constraint_matrix[rows] / scale[:, None]
        limit = problem.constraint_bounds[rows] / scale
    cost_scale = float(np.abs(problem.coefficients).max()) or 1.0
    return _Model(problem.coefficients / cost_scale, cost_scale, matrix, limit, lower, upper)


def _highs_options(mip_rel_gap: float, time_limit_s: float | None) -> dict[str, Any]:
    options: dict[str, Any] = {"mip_rel_gap": mip_rel_gap, **_TOLERANCE_OPTIONS}
    if time_limit_s is not None:
        options["time_limit"] = max(time_limit_s, 1e-3)
    return options


def _solve_model(model: _Model, mip_rel_gap: float, time_limit_s: float | None = None) -> _Solved:
    from scipy.optimize import Bounds, LinearConstraint, milp

    # Hand HiGHS only the variables still free; the fixed ones move into the right-hand side.
    free = model.upper > model.lower
    x = model.lower.copy()
    if not free.any():
        feasible = model.matrix is None or model.limit is None or bool(np.all(model.matrix @ x <= model.limit))
        if not feasible:
            return _Solved(None, INFEASIBLE, None)
        return _Solved(np.asarray(x, dtype=bool), OPTIMAL, float(model.cost @ x))
    constraints = []
    if model.matrix is not None and model.limit is not None:
        rest = model.limit - model.matrix[:, ~free] @ x[~free]
        constraints.append(LinearConstraint(model.matrix[:, free], -np.inf, rest))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Unrecognized options", RuntimeWarning)
        result = milp(
            c=model.cost[free],
            integrality=np.ones(int(free.sum())),
            bounds=Bounds(model.lower[free], model.upper[free]),
            constraints=constraints,
            options=_highs_options(mip_rel_gap, time_limit_s),
        )
    fixed_part = float(model.cost[~free] @ x[~free])
    dual = result.get("mip_dual_bound")
    bound = float(dual) + fixed_part if dual is not None and np.isfinite(dual) else None
    if result.status == 2:
        return _Solved(None, INFEASIBLE, None)
    if result.x is None:
        return _Solved(None, STOPPED, bound)
    x[free] = np.round(result.x)
    answer = np.asarray(x, dtype=bool)
    if result.status == 0:
        return _Solved(answer, OPTIMAL, bound if bound is not None else float(model.cost @ answer))
    return _Solved(answer, STOPPED, bound)


def _solve(
    problem: OffloadProblem, names: tuple[str, ...], mip_rel_gap: float, time_limit_s: float | None = None
) -> _Solved:
    model = _model(problem, names)
    return _Solved(None, INFEASIBLE, None) if model is None else _solve_model(model, mip_rel_gap, time_limit_s)


def _relaxation(model: _Model, time_limit_s: float | None = None) -> Any:
    """The LP relaxation (scipy's HiGHS result), or None when it could not be solved."""
    from scipy.optimize import linprog

    options: dict[str, Any] = {"primal_feasibility_tolerance": FEASIBILITY_TOLERANCE}
    if time_limit_s is not None:
        options["time_limit"] = max(time_limit_s, 1e-3)
    lp = linprog(
        model.cost,
        A_ub=model.matrix,
        b_ub=model.limit,
        bounds=np.stack([model.lower, model.upper], axis=1),
        method="highs",
        options=options,
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
    return _Model(model.cost, model.cost_scale, model.matrix, model.limit, lower, upper)


def find_conflict(problem: OffloadProblem, time_limit_s: float | None = None) -> tuple[str, ...]:
    """The smallest set of constraints proven to have no common solution (empty if none is found: feasible, or
    no proof within `time_limit_s` per subset)."""
    for size in range(1, len(CONSTRAINTS) + 1):
        for names in itertools.combinations(CONSTRAINTS, size):
            if _solve(problem, names, 1e-4, time_limit_s).status == INFEASIBLE:
                return names
    return ()


def _best_feasible(problem: OffloadProblem, candidates: list[BoolArray]) -> BoolArray:
    """The candidate of lowest objective among the feasible ones; without any, the one overshooting least."""
    feasible = [x for x in candidates if not problem.violated(x)]
    if feasible:
        return min(feasible, key=lambda x: float(problem.objective(x)))
    return min(candidates, key=lambda x: float(overshoot(problem, x)))


class MilpDecider:
    """The exact optimum of the 0/1 programme (HiGHS via scipy.optimize.milp), within `time_limit_s`.

    For 200 tasks or more, the LP relaxation is solved first; its rounding (or else the greedy answer), improved
    by single flips, is an incumbent, and the LP's reduced costs fix every task whose side that incumbent already
    settles (`_fix_by_reduced_costs`); branch and bound then runs on the tasks left. The answer stays exact.
    `mip_rel_gap` is HiGHS's stopping gap; the default 1e-6 makes answers optimal to well below the precision
    of the measured costs. `time_limit_s=None` waits for the proof however long it takes."""

    name = "milp"

    # Below this many tasks HiGHS alone is quicker than the LP plus the heuristics that prepare the reduction.
    REDUCE_FROM = 200

    def __init__(
        self,
        mip_rel_gap: float = 1e-6,
        reduce: bool = True,
        time_limit_s: float | None = DEFAULT_TIME_LIMIT_S,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._gap = mip_rel_gap
        self._reduce = reduce
        self._time_limit = time_limit_s
        self._clock = clock

    def decide(self, problem: OffloadProblem, rng: np.random.Generator) -> Decision:
        deadline = None if self._time_limit is None else self._clock() + self._time_limit
        model = _model(problem, CONSTRAINTS)
        solved = _Solved(None, INFEASIBLE, None) if model is None else self._optimum(problem, model, deadline)
        if solved.status == INFEASIBLE or model is None:
            conflict = find_conflict(problem, self._remaining(deadline)) or CONSTRAINTS
            return evaluate(problem, np.zeros(problem.n, dtype=bool), self.name, conflict=conflict)
        if solved.status == OPTIMAL and solved.x is not None and not problem.violated(solved.x):
            return evaluate(problem, solved.x, self.name, optimality_gap=self._gap_of(problem, model, solved))
        # The fallback: the solver's incumbent and the greedy answer, each repaired and improved; the better one.
        candidates = [improve(problem, greedy(problem))]
        if solved.x is not None:
            candidates.append(improve(problem, repair(problem, solved.x)))
        answer = _best_feasible(problem, candidates)
        if solved.bound is None:
            lp = _relaxation(model)
            solved = _Solved(solved.x, solved.status, None if lp is None else float(lp.fun))
        gap = self._gap_of(problem, model, _Solved(answer, solved.status, solved.bound))
        return evaluate(problem, answer, self.name, optimality_gap=gap, time_limited=solved.status == STOPPED)

    def _remaining(self, deadline: float | None) -> float | None:
        return None if deadline is None else max(deadline - self._clock(), 0.0)

    @staticmethod
    def _gap_of(problem: OffloadProblem, model: _Model, solved: _Solved) -> float | None:
        """(f(x) − lower bound) / f(x) for a feasible x; None when no bound is known or x is infeasible."""
        if solved.x is None or solved.bound is None or problem.violated(solved.x):
            return None
        value = float(problem.objective(solved.x))
        lower = problem.constant + model.cost_scale * solved.bound
        return max(0.0, value - lower) / max(abs(value), 1e-12)

    def _optimum(self, problem: OffloadProblem, model: _Model, deadline: float | None) -> _Solved:
        if not self._reduce or problem.n < self.REDUCE_FROM:
            return _solve_model(model, self._gap, self._remaining(deadline))
        lp = _relaxation(model, self._remaining(deadline))
        if lp is None:
            return _solve_model(model, self._gap, self._remaining(deadline))
        incumbent = _rounded(problem, lp.x)
        if incumbent is None:
            incumbent = improve(problem, greedy(problem))
            if problem.violated(incumbent):
                return _solve_model(model, self._gap, self._remaining(deadline))
        reduced = _solve_model(_fix_by_reduced_costs(model, lp, incumbent), self._gap, self._remaining(deadline))
        value = float(model.cost @ incumbent)
        better = reduced.x is not None and float(model.cost @ reduced.x) < value
        best = reduced.x if better and reduced.x is not None else incumbent
        if reduced.status != STOPPED:
            # Nothing better than the incumbent outside what the reduced model searched: best is optimal.
            return _Solved(best, OPTIMAL, float(model.cost @ best))
        # The optimum is the incumbent or lies in the reduced model; the LP bound holds for the whole model.
        bound = float(lp.fun) if reduced.bound is None else max(float(lp.fun), min(value, reduced.bound))
        return _Solved(best, STOPPED, bound)
