"""The exact decider against brute force over all 2^N decisions, and infeasibility reports."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from offload.costmodel import OffloadProblem
from offload.deciders import MilpDecider, find_conflict
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
