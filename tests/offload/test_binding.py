"""Deciders on instances where a constraint binds, against the exhaustive checker (all 2^N decisions).

The MILP must equal brute force on every instance (and detect every infeasible one); the default PSO must end
within 1 % of the optimum on every feasible one. The seeded set is disjoint from the one the PSO's settings were
chosen on (docs/OFFLOAD.md), and small enough to run in a few seconds.
"""

from __future__ import annotations

import numpy as np
import pytest

from offload.bruteforce import brute_force, every_decision
from offload.costmodel import OffloadProblem
from offload.errors import ProblemError
from offload.milp import MilpDecider
from offload.pso import PsoDecider
from offload.synthetic import FAMILIES, binding_problem, binds

SIZES = (3, 6, 9, 12, 14)
CASES = [(family, n, seed) for family in FAMILIES for n in SIZES for seed in range(3)]


def instance(family: str, n: int, seed: int) -> OffloadProblem:
    return binding_problem(n, family, np.random.default_rng([7, n, seed, FAMILIES.index(family)]))


@pytest.mark.parametrize("family", FAMILIES)
def test_generator_is_seeded_and_its_constraint_binds(family: str) -> None:
    a = binding_problem(10, family, np.random.default_rng(5))
    b = binding_problem(10, family, np.random.default_rng(5))
    assert np.array_equal(a.local, b.local) and np.array_equal(a.offload, b.offload) and a.t_max_s == b.t_max_s
    assert binds(a, family)
    if family != "C4":
        # The unconstrained optimum (offload every task that lowers the objective) breaks the family's constraint.
        assert family in a.violated(a.coefficients < 0)
    else:
        assert np.any(a.must_offload & (a.coefficients > 0))


def test_generator_refuses_unknown_families() -> None:
    with pytest.raises(ProblemError):
        binding_problem(5, "C9", np.random.default_rng(0))


def test_brute_force_tries_every_decision() -> None:
    every = every_decision(3)
    assert every.shape == (8, 3) and len({row.tobytes() for row in every}) == 8
    with pytest.raises(ProblemError):
        brute_force(binding_problem(21, "C1", np.random.default_rng(0)))


def test_the_set_holds_feasible_and_infeasible_instances() -> None:
    outcomes = [brute_force(instance(*case)).x is None for case in CASES]
    assert 0 < sum(outcomes) < len(outcomes) / 2


@pytest.mark.parametrize(("family", "n", "seed"), CASES)
def test_milp_equals_brute_force_and_pso_is_within_one_percent(family: str, n: int, seed: int) -> None:
    problem = instance(family, n, seed)
    exact = brute_force(problem)
    milp = MilpDecider().decide(problem, np.random.default_rng(seed))
    pso = PsoDecider().decide(problem, np.random.default_rng(seed))
    assert pso.violated == problem.violated(pso.x)
    if exact.objective is None:
        assert milp.conflict and not milp.feasible
        assert not pso.feasible
        return
    assert milp.feasible and milp.objective == pytest.approx(exact.objective, rel=1e-9, abs=1e-12)
    assert pso.feasible, pso.explain()
    assert (pso.objective - exact.objective) / exact.objective <= 0.01
