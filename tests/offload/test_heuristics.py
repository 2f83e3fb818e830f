"""Repair, local improvement and the baselines."""

from __future__ import annotations

import numpy as np
import pytest

from offload.deciders import AllLocal, AllOffload, GreedyDecider, MilpDecider, RandomDecider, baselines
from offload.heuristics import greedy, improve, overshoot, repair
from offload.synthetic import random_problem


@pytest.mark.parametrize("seed", range(8))
def test_repair_reaches_feasibility_whenever_all_local_respects_c3(seed: int) -> None:
    rng = np.random.default_rng(seed)
    problem = random_problem(30, rng, t_max_fraction=1.0)
    start = rng.random(30) < 0.5
    fixed = repair(problem, start)
    assert problem.violated(fixed) == ()
    assert overshoot(problem, fixed) == 0


@pytest.mark.parametrize("seed", range(8))
def test_improve_never_worsens_and_stays_feasible(seed: int) -> None:
    rng = np.random.default_rng(seed)
    problem = random_problem(30, rng, t_max_fraction=0.9)
    start = greedy(problem)
    if problem.violated(start):
        pytest.skip("greedy found no feasible start on this instance")
    better = improve(problem, start)
    assert problem.violated(better) == ()
    assert problem.objective(better) <= problem.objective(start) + 1e-12


def test_greedy_is_never_better_than_the_optimum() -> None:
    for seed in range(10):
        rng = np.random.default_rng(seed)
        problem = random_problem(25, rng, t_max_fraction=0.92)
        exact, heuristic = MilpDecider().decide(problem, rng), GreedyDecider().decide(problem, rng)
        if exact.feasible and heuristic.feasible:
            assert heuristic.objective >= exact.objective - 1e-9


def test_baselines_do_what_their_names_say() -> None:
    problem = random_problem(20, np.random.default_rng(1))
    rng = np.random.default_rng(2)
    assert not AllLocal().decide(problem, rng).x.any()
    assert AllOffload().decide(problem, rng).x.all()
    picks = RandomDecider().decide(problem, rng).x
    assert 0 < picks.sum() < 20
    assert [d.name for d in baselines()] == ["all-local", "all-offload", "greedy", "random"]
