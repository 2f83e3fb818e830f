"""The paper's PSO decider: constraints respected or infeasibility reported, gap, hygiene."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

from offload.costmodel import OffloadProblem
from offload.deciders import MilpDecider
from offload.pso import PLAIN_SETTINGS, PsoDecider, PsoSettings
from offload.synthetic import random_problem


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("fraction", [1.0, 0.9, 0.8])
def test_pso_answer_satisfies_c1_to_c4_or_says_it_does_not(seed: int, fraction: float) -> None:
    rng = np.random.default_rng(seed)
    problem = random_problem(40, rng, t_max_fraction=fraction, memory_available_mb=45.0)
    decision = PsoDecider().decide(problem, rng)
    assert decision.violated == problem.violated(decision.x)
    optimum = MilpDecider().decide(problem, rng)
    if optimum.feasible:
        assert decision.feasible, decision.explain()
        assert decision.objective >= optimum.objective - 1e-9
    else:
        assert not decision.feasible


def test_infeasible_instance_is_not_silently_solved() -> None:
    local = np.ones((3, 3))
    offload = np.full((3, 3), 2.0)
    problem = OffloadProblem(local, offload, t_max_s=1.0, memory_available_mb=10.0)  # 3 s of work at best
    decision = PsoDecider().decide(problem, np.random.default_rng(0))
    assert "C3" in decision.violated
    assert not decision.feasible


@pytest.mark.parametrize("seed", range(3))
def test_gap_to_the_optimum_is_within_two_percent_at_n_100(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    problem = random_problem(100, rng, t_max_fraction=0.95)
    optimum = MilpDecider().decide(problem, rng)
    decision = PsoDecider().decide(problem, rng)
    assert optimum.feasible and decision.feasible
    assert (decision.objective - optimum.objective) / optimum.objective <= 0.02


def test_plain_paper_settings_run_and_are_reproducible() -> None:
    problem = random_problem(30, np.random.default_rng(5))
    first = PsoDecider(PLAIN_SETTINGS).decide(problem, np.random.default_rng(9))
    second = PsoDecider(PLAIN_SETTINGS).decide(problem, np.random.default_rng(9))
    assert np.array_equal(first.x, second.x)


def test_seeded_runs_are_reproducible_and_leave_the_global_rng_alone() -> None:
    problem = random_problem(50, np.random.default_rng(7), t_max_fraction=0.9)
    np.random.seed(1234)
    before = np.random.get_state()[1].copy()  # type: ignore[index]
    a = PsoDecider(PsoSettings(repaired=False)).decide(problem, np.random.default_rng(11))
    b = PsoDecider(PsoSettings(repaired=False)).decide(problem, np.random.default_rng(11))
    assert np.array_equal(a.x, b.x)
    assert np.array_equal(np.random.get_state()[1], before)  # type: ignore[index]


def test_no_report_log_and_no_logging_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    PsoDecider(PsoSettings(particles=5, iterations=3)).decide(
        random_problem(5, np.random.default_rng(0)), np.random.default_rng(0)
    )
    assert os.listdir(tmp_path) == []
    assert root.handlers == handlers and root.level == level


def test_fitness_penalises_every_breach() -> None:
    local = np.array([[1.0, 1.0, 50.0], [1.0, 1.0, 1.0]])
    offload = np.array([[1.0, 1.0, 1.0], [0.5, 0.5, 0.5]])
    problem = OffloadProblem(local, offload, t_max_s=10.0, memory_available_mb=30.0)
    decider = PsoDecider()
    scores = decider.fitness(problem, np.array([[1, 1], [0, 1]]))
    assert scores[0] == pytest.approx(float(problem.objective(np.array([1, 1]))))
    assert scores[1] > 100  # task 0 left local breaks C4
