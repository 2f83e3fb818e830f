"""Deciders behind one interface: given a problem and an RNG, return a `Decision` (paper Sec. III-A "decision").

`MilpDecider` (exact, the default; offload/milp.py) solves the 0/1 programme with scipy's HiGHS branch and
bound within a time limit; the paper's PSO is `offload.pso.PsoDecider`; the baselines are all-local,
all-offload, greedy and uniformly random. Every decider returns its answer evaluated against C1–C4: baselines
may return infeasible answers and say so; the exact decider proves infeasibility and names the smallest set of
constraints that conflict.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from offload.costmodel import Decision, OffloadProblem, evaluate
from offload.heuristics import greedy
from offload.milp import MilpDecider, find_conflict

__all__ = [
    "AllLocal",
    "AllOffload",
    "Decider",
    "GreedyDecider",
    "MilpDecider",
    "RandomDecider",
    "baselines",
    "find_conflict",
]


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


def baselines() -> list[Decider]:
    return [AllLocal(), AllOffload(), GreedyDecider(), RandomDecider()]
