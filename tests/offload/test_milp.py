"""The exact decider against brute force over all 2^N decisions, and infeasibility reports."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from offload.costmodel import FEASIBILITY_TOLERANCE, OffloadProblem
from offload.deciders import MilpDecider, find_conflict
from offload.milp import DEFAULT_TIME_LIMIT_S
from offload.synthetic import random_problem


def brute_force(problem: OffloadProblem) -> float | None:
    every = np.array(list(itertools.product((0, 1), repeat=problem.n)), dtype=float)
    feasible = np.all(problem.excess(every) <= problem.tolerance, axis=1)
    if not feasible.any():
        return None
    return float(problem.objective(every)[feasible].min())


CASES = [(n, seed, fraction) for n in (1, 3, 6, 9, 12) for seed in range(4) for fraction in (1.0, 0.95, 0.85)]


@pytest.mark.parametrize(("n", "seed", "fraction"), CASES)
def test_milp_equals_brute_force(n: int, seed: int, fraction: float) -> None:
    rng = np.random.default_rng(1000 * n + seed)
    # A tight memory limit forces some tasks to be offloaded (C4) in some instances.
    problem = random_problem(n, rng, t_max_fraction=fraction, memory_available_mb=45.0)
    decision = MilpDecider().decide(problem, rng)
    best = brute_force(problem)
    if best is None:
        assert not decision.feasible
        assert decision.conflict, "an infeasible instance must name the constraints that conflict"
    else:
        assert decision.feasible, decision.explain()
        assert decision.objective == pytest.approx(best, rel=1e-6, abs=1e-9)


def test_unreachable_deadline_is_reported_as_c3() -> None:
    local = np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    offload = np.array([[2.0, 0.5, 0.5], [2.0, 0.5, 0.5]])  # offloading is slower: 2 s of work minimum
    problem = OffloadProblem(local, offload, t_max_s=1.5, memory_available_mb=10.0)
    decision = MilpDecider().decide(problem, np.random.default_rng(0))
    assert decision.conflict == ("C3",)
    assert not decision.feasible
    assert "C3" in decision.explain() and "T_max" in decision.explain()


def test_task_fitting_neither_way_is_reported_as_c4() -> None:
    local = np.array([[1.0, 1.0, 50.0]])
    offload = np.array([[1.0, 1.0, 40.0]])
    problem = OffloadProblem(local, offload, t_max_s=10.0, memory_available_mb=30.0)
    assert MilpDecider().decide(problem, np.random.default_rng(0)).conflict == ("C4",)


def test_joint_conflict_names_both_constraints() -> None:
    # Task 0 must be offloaded (memory) but offloading it costs time C1 forbids; each alone is satisfiable.
    local = np.array([[1.0, 1.0, 50.0]])
    offload = np.array([[2.0, 0.5, 1.0]])
    problem = OffloadProblem(local, offload, t_max_s=10.0, memory_available_mb=30.0)
    assert find_conflict(problem) == ("C1", "C4")


def test_feasible_instance_has_no_conflict() -> None:
    problem = random_problem(8, np.random.default_rng(3))
    assert find_conflict(problem) == ()


# --- time limit and the shared feasibility tolerance -------------------------------------------------------------


@pytest.mark.parametrize("n", [30, 100, 400, 1000])
def test_a_tiny_time_limit_returns_a_feasible_fallback_and_its_gap(n: int) -> None:
    problem = random_problem(n, np.random.default_rng(n), t_max_fraction=0.9)
    optimum = MilpDecider(time_limit_s=None).decide(problem, np.random.default_rng(0))
    stopped = MilpDecider(time_limit_s=1e-9).decide(problem, np.random.default_rng(0))
    assert optimum.feasible and optimum.optimality_gap is not None and optimum.optimality_gap < 1e-5
    assert stopped.time_limited
    assert stopped.feasible, stopped.explain()
    assert stopped.violated == problem.violated(stopped.x) == ()
    assert stopped.objective >= optimum.objective - 1e-9
    # The reported gap is a proof: the optimum cannot lie below objective × (1 − gap).
    assert stopped.optimality_gap is not None
    assert stopped.objective * (1 - stopped.optimality_gap) <= optimum.objective + 1e-9
    assert "time limit" in stopped.explain()


class FakeResult(dict[str, Any]):
    def __getattr__(self, name: str) -> Any:
        return self[name]


def fake_milp(x: list[float] | None, status: int, dual_bound: float | None) -> Any:
    def milp(c: Any, **kwargs: Any) -> FakeResult:
        answer = None if x is None else np.array(x, dtype=float)[: len(c)]
        return FakeResult(x=answer, status=status, mip_dual_bound=dual_bound)

    return milp


def tight_problem() -> OffloadProblem:
    # Offloading saves time and energy on tasks 0-1 but costs time on 2-3; all-offload breaks C1.
    local = np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    offload = np.array([[0.8, 0.5, 0.5], [0.9, 0.5, 0.5], [1.5, 0.2, 0.2], [1.6, 0.2, 0.2]])
    return OffloadProblem(local, offload, t_max_s=100.0, memory_available_mb=10.0)


def test_a_solver_answer_the_checker_rejects_is_repaired(monkeypatch: pytest.MonkeyPatch) -> None:
    import scipy.optimize

    problem = tight_problem()
    assert problem.violated(np.ones(4, dtype=bool)) == ("C1",)
    # The solver claims optimality for an answer beyond the shared tolerance (what stacked tolerances did).
    monkeypatch.setattr(scipy.optimize, "milp", fake_milp([1, 1, 1, 1], 0, -10.0))
    decision = MilpDecider().decide(problem, np.random.default_rng(0))
    assert decision.feasible, decision.explain()
    assert not decision.time_limited
    assert decision.optimality_gap is not None and decision.optimality_gap >= 0


def test_a_stop_without_incumbent_falls_back_to_greedy_and_the_lp_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    import scipy.optimize

    problem = tight_problem()
    exact = MilpDecider(time_limit_s=None).decide(problem, np.random.default_rng(0))
    monkeypatch.setattr(scipy.optimize, "milp", fake_milp(None, 1, None))
    decision = MilpDecider().decide(problem, np.random.default_rng(0))
    assert decision.time_limited and decision.feasible
    assert decision.optimality_gap is not None
    assert decision.objective * (1 - decision.optimality_gap) <= exact.objective + 1e-12


def test_the_solver_applies_the_checkers_tolerance_and_no_slack_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    import scipy.optimize

    real = scipy.optimize.milp
    seen: list[tuple[dict[str, Any], Any]] = []

    def spy(c: Any, **kwargs: Any) -> Any:
        seen.append((dict(kwargs["options"]), kwargs["constraints"][0].ub.copy()))
        return real(c, **kwargs)

    monkeypatch.setattr(scipy.optimize, "milp", spy)
    problem = tight_problem()
    MilpDecider().decide(problem, np.random.default_rng(0))
    options, limits = seen[0]
    assert options["mip_feasibility_tolerance"] == FEASIBILITY_TOLERANCE
    assert options["primal_feasibility_tolerance"] == FEASIBILITY_TOLERANCE
    assert options["time_limit"] <= DEFAULT_TIME_LIMIT_S
    # Rows C1 and C2 (C3 is looser than C1 here), scaled to a largest coefficient of 1, limits exactly b = 0.
    assert np.array_equal(limits, np.zeros(2))
    # ... and the checker forgives exactly that tolerance on the same scale.
    assert np.allclose(problem.tolerance[:3], FEASIBILITY_TOLERANCE * np.abs(problem.constraint_matrix).max(axis=1))
