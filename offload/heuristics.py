"""Constraint repair, local improvement and the greedy baseline: cheap ways to a good feasible decision.

They work on the problem's linear form (objective coefficients c; C1–C3 as A x ≤ b) and honour C4 by fixing
the tasks it forces before touching anything else. Infeasibility is measured as the sum over C1–C3 of the
overshoot divided by the all-local total of that constraint's quantity, so seconds and mAh weigh alike.
"""

from __future__ import annotations

import numpy as np

from offload.costmodel import ENERGY, TIME, BoolArray, FloatArray, OffloadProblem

_EPS = 1e-12
# Pair moves look at every pair of free tasks: n² candidates per move, so they are used only on small batches.
PAIR_MOVES_UP_TO = 32


def _row_scale(problem: OffloadProblem) -> FloatArray:
    totals = problem.all_local
    scale = np.array([totals[TIME], totals[ENERGY], totals[TIME]])
    return np.where(scale > 0, scale, 1.0)


def _limits(problem: OffloadProblem) -> FloatArray:
    return np.asarray(problem.constraint_bounds + problem.tolerance[:3], dtype=np.float64)


def _movable(problem: OffloadProblem) -> BoolArray:
    return np.asarray(~(problem.must_offload | problem.must_stay))


def apply_memory_rule(problem: OffloadProblem, x: np.ndarray) -> BoolArray:
    """x with the tasks C4 forces set as it forces them (a task forced both ways stays as it is)."""
    chosen = np.asarray(x).astype(bool).copy()
    chosen[problem.must_offload & ~problem.must_stay] = True
    chosen[problem.must_stay & ~problem.must_offload] = False
    return chosen


def overshoot(problem: OffloadProblem, x: np.ndarray) -> FloatArray:
    """Normalised total overshoot of C1–C3 for x (or each row of a matrix of decisions); 0 when they hold."""
    lhs = np.asarray(x, dtype=np.float64) @ problem.constraint_matrix.T
    over = np.maximum(lhs - _limits(problem), 0.0) / _row_scale(problem)
    return np.asarray(over.sum(axis=-1), dtype=np.float64)


def repair(problem: OffloadProblem, x: np.ndarray) -> BoolArray:
    """Make x satisfy C4, then flip one free task at a time — the flip that removes the most C1–C3 overshoot
    per unit of objective lost — until x is feasible or no single flip helps."""
    chosen = apply_memory_rule(problem, x)
    matrix, limits, scale = problem.constraint_matrix, _limits(problem), _row_scale(problem)
    movable, coefficients = _movable(problem), problem.coefficients
    lhs = matrix @ chosen
    for _ in range(problem.n):
        current = (np.maximum(lhs - limits, 0.0) / scale).sum()
        if current <= 0:
            break
        step = np.where(chosen, -1.0, 1.0)
        after = lhs[:, None] + matrix * step[None, :]
        gain = current - (np.maximum(after - limits[:, None], 0.0) / scale[:, None]).sum(axis=0)
        gain[~movable] = 0.0
        if gain.max() <= _EPS:
            pair = _pair_reducing_overshoot(problem, chosen, lhs, current)
            if pair is None:
                break
            for flip in pair:
                chosen[flip] = not chosen[flip]
                lhs = lhs + matrix[:, flip] * step[flip]
            continue
        cost = np.maximum(coefficients * step, 0.0)
        flip = int(np.argmax(np.where(gain > _EPS, gain / (cost + _EPS), -np.inf)))
        chosen[flip] = not chosen[flip]
        lhs = lhs + matrix[:, flip] * step[flip]
    return chosen


def _pair_reducing_overshoot(
    problem: OffloadProblem, chosen: BoolArray, lhs: FloatArray, current: float
) -> tuple[int, int] | None:
    """The pair of free flips that removes the most C1–C3 overshoot when no single flip removes any (two
    constraints can block every single flip: the one that eases C2 overshoots C3 more). Small batches only."""
    if problem.n > PAIR_MOVES_UP_TO:
        return None
    matrix, limits, scale = problem.constraint_matrix, _limits(problem), _row_scale(problem)
    movable = _movable(problem)
    moved = matrix * np.where(chosen, -1.0, 1.0)[None, :]
    after = lhs[:, None, None] + moved[:, :, None] + moved[:, None, :]
    left = (np.maximum(after - limits[:, None, None], 0.0) / scale[:, None, None]).sum(axis=0)
    gain = np.where(np.triu(np.outer(movable, movable), k=1), current - left, 0.0)
    flat = int(np.argmax(gain))
    if gain.flat[flat] <= _EPS:
        return None
    i, j = divmod(flat, problem.n)
    return i, j


def improve(problem: OffloadProblem, x: np.ndarray, max_moves: int | None = None) -> BoolArray:
    """From a feasible x, keep making the single free flip that lowers the objective most while staying
    feasible. An infeasible x comes back unchanged."""
    chosen = np.asarray(x).astype(bool).copy()
    matrix, limits, coefficients = problem.constraint_matrix, _limits(problem), problem.coefficients
    movable = _movable(problem)
    lhs = matrix @ chosen
    if np.any(lhs > limits) or problem.violated(chosen):
        return chosen
    for _ in range(problem.n if max_moves is None else max_moves):
        step = np.where(chosen, -1.0, 1.0)
        delta = coefficients * step
        fits = np.all(lhs[:, None] + matrix * step[None, :] <= limits[:, None], axis=0)
        candidates = np.where(fits & movable & (delta < -_EPS), delta, np.inf)
        flip = int(np.argmin(candidates))
        if not np.isfinite(candidates[flip]):
            break
        chosen[flip] = not chosen[flip]
        lhs = lhs + matrix[:, flip] * step[flip]
    return chosen


def greedy(problem: OffloadProblem) -> BoolArray:
    """Apply C4, then offload free tasks in order of objective gain, keeping each only if it adds no
    overshoot; two passes (a task refused early may fit once later ones made room), then repair."""
    chosen = apply_memory_rule(problem, np.zeros(problem.n, dtype=bool))
    coefficients, movable = problem.coefficients, _movable(problem)
    # Plain floats: this loop visits every task and three rows, where numpy's per-call overhead would dominate.
    columns: list[list[float]] = problem.constraint_matrix.T.tolist()
    limits: list[float] = _limits(problem).tolist()
    scale: list[float] = _row_scale(problem).tolist()
    lhs: list[float] = (problem.constraint_matrix @ chosen).tolist()

    def overshoot_of(values: list[float]) -> float:
        return sum(max(v - limit, 0.0) / s for v, limit, s in zip(values, limits, scale, strict=True))

    current = overshoot_of(lhs)
    order = [int(n) for n in np.argsort(coefficients, kind="stable") if coefficients[n] < 0 and movable[n]]
    for _ in range(2):
        for n in order:
            if chosen[n]:
                continue
            trial = [v + a for v, a in zip(lhs, columns[n], strict=True)]
            trial_overshoot = overshoot_of(trial)
            if trial_overshoot <= current + _EPS:
                chosen[n], lhs, current = True, trial, trial_overshoot
    return repair(problem, chosen)


def improve_pairs(problem: OffloadProblem, x: np.ndarray, max_moves: int | None = None) -> BoolArray:
    """`improve`, then, while some exist, the best feasible move flipping two tasks at once (one in and one out,
    or two in, or two out) that lowers the objective, each followed by single flips again. Single flips cannot
    leave a point where a binding constraint blocks every one of them; a swap (trade a task's time for
    another's) often can. Batches over PAIR_MOVES_UP_TO tasks get the single flips only."""
    chosen = improve(problem, x)
    if problem.n > PAIR_MOVES_UP_TO or problem.violated(chosen):
        return chosen
    matrix, limits, coefficients = problem.constraint_matrix, _limits(problem), problem.coefficients
    movable = _movable(problem)
    pairs = np.triu(np.outer(movable, movable), k=1)
    for _ in range(problem.n if max_moves is None else max_moves):
        step = np.where(chosen, -1.0, 1.0)
        delta = coefficients * step
        lhs = matrix @ chosen
        moved = matrix * step[None, :]
        fits = np.all(lhs[:, None, None] + moved[:, :, None] + moved[:, None, :] <= limits[:, None, None], axis=0)
        gain = delta[:, None] + delta[None, :]
        candidates = np.where(pairs & fits & (gain < -_EPS), gain, np.inf)
        flat = int(np.argmin(candidates))
        if not np.isfinite(candidates.flat[flat]):
            break
        i, j = divmod(flat, problem.n)
        chosen[i], chosen[j] = not chosen[i], not chosen[j]
        chosen = improve(problem, chosen)
    return chosen
