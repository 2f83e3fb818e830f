"""The paper's decider: binary particle swarm optimisation (Algorithm 1) with pyswarms' BinaryPSO.

Plain BinaryPSO on this problem is weak (issue 6 measured a 6–9% gap to the optimum at N = 100 with 50
particles × 100 iterations, and no feasible answer when C3 binds), because a binary swarm samples every bit
afresh each iteration and a penalty alone rarely steers it into a tight feasible region. Three additions,
each switchable for comparison:
  - seeding: the swarm starts from the greedy answer, repaired all-local and all-offload, and greedy with a
    few bits flipped, with velocities pointing at those positions, so it searches around good feasible points;
  - penalties: fitness = objective + `penalty` × normalised overshoot of C1–C3 + C4 breaches, so a feasible
    position always beats an infeasible one in practice;
  - repair: the best position is repaired (offload/heuristics.py) and improved by single feasible flips.
If even the repaired answer breaks a constraint, the decision reports it (`Decision.violated`); PSO cannot
prove infeasibility, the MILP can.

pyswarms draws from numpy's global RNG; the decider seeds it from the caller's RNG and restores it afterwards
(so two PSO decisions must not run at once in threads of one process).
pyswarms also configures the root logger with a `report.log` file in the working directory whenever it is
imported or an optimiser is built; `_import_binary_pso` prevents both.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np

from offload.costmodel import Decision, OffloadProblem, evaluate
from offload.heuristics import apply_memory_rule, greedy, improve, overshoot, repair

# An incremental logging config changes nothing: pyswarms' Reporter applies it instead of its defaults.
_QUIET_LOGGING = '{"version": 1, "incremental": true}'
_binary_pso_class: Any = None


def _import_binary_pso() -> Any:
    """pyswarms' BinaryPSO class, imported without touching logging or writing report.log."""
    global _binary_pso_class
    if _binary_pso_class is not None:
        return _binary_pso_class
    handle, path = tempfile.mkstemp(suffix=".json", prefix="ehrnet-pyswarms-")
    previous = os.environ.get("LOG_CFG")
    try:
        with os.fdopen(handle, "w") as config:
            config.write(_QUIET_LOGGING)
        os.environ["LOG_CFG"] = path  # read by every Reporter built while pyswarms' modules load
        from pyswarms.discrete.binary import BinaryPSO
        from pyswarms.utils.reporter.reporter import Reporter
    finally:
        if previous is None:
            os.environ.pop("LOG_CFG", None)
        else:
            os.environ["LOG_CFG"] = previous
        os.unlink(path)

    def keep_logging_alone(self: Any, path: str | None = None) -> None:
        self.logger = logging.getLogger("pyswarms")

    # Later optimisers build Reporters too; from now on they leave the process's logging configuration alone.
    Reporter._setup_logger = keep_logging_alone
    _binary_pso_class = BinaryPSO
    return BinaryPSO


@dataclass(frozen=True)
class PsoSettings:
    particles: int = 30
    iterations: int = 40
    c1: float = 1.5  # pull towards each particle's own best
    c2: float = 1.5  # pull towards the swarm's best
    w: float = 1.0  # inertia; Kennedy & Eberhart's binary PSO keeps the whole velocity
    velocity_clamp: float = 4.0  # |v| ≤ 4 keeps every bit's flip probability ≥ 1.8%
    neighbours: int | None = None  # ring topology with k neighbours; None = global best (star)
    seeded: bool = True
    repaired: bool = True
    penalty: float = 1000.0
    stall_iterations: int = 10  # stop after this many iterations without improvement


PAPER_SETTINGS = PsoSettings(
    particles=50,
    iterations=100,
    c1=0.5,
    c2=0.5,
    w=0.9,
    velocity_clamp=6.0,
    neighbours=None,
    seeded=False,
    repaired=False,
    stall_iterations=100,
)


class PsoDecider:
    name = "pso"

    def __init__(self, settings: PsoSettings = PsoSettings(), name: str = "pso") -> None:
        self.settings = settings
        self.name = name

    def fitness(self, problem: OffloadProblem, positions: np.ndarray) -> np.ndarray:
        """Objective plus penalties for each row of a (particles, N) 0/1 matrix."""
        memory_breaches = (positions < problem.must_offload).sum(axis=1) + (positions > ~problem.must_stay).sum(axis=1)
        breach = overshoot(problem, positions) + memory_breaches / problem.n
        return np.asarray(problem.objective(positions) + self.settings.penalty * breach)

    def _seeds(self, problem: OffloadProblem, rng: np.random.Generator) -> np.ndarray:
        count, n = self.settings.particles, problem.n
        positions = rng.random((count, n)) < 0.5
        if not self.settings.seeded:
            return positions
        start = greedy(problem)
        anchors = [start, repair(problem, np.zeros(n, bool)), repair(problem, np.ones(n, bool))]
        for i, anchor in enumerate(anchors[:count]):
            positions[i] = anchor
        for i in range(len(anchors), count):
            # Greedy with a few bits flipped: diversity near a good feasible point.
            flips = rng.random(n) < min(0.5, 3 / n)
            positions[i] = apply_memory_rule(problem, start ^ flips)
        return positions

    def decide(self, problem: OffloadProblem, rng: np.random.Generator) -> Decision:
        settings = self.settings
        binary_pso = _import_binary_pso()
        init_pos = self._seeds(problem, rng).astype(np.int64)
        k = settings.neighbours or settings.particles
        options = {"c1": settings.c1, "c2": settings.c2, "w": settings.w, "k": min(k, settings.particles), "p": 2}
        saved = np.random.get_state()
        np.random.seed(int(rng.integers(0, 2**32 - 1)))
        try:
            optimiser = binary_pso(
                n_particles=settings.particles,
                dimensions=problem.n,
                options=options,
                init_pos=init_pos,
                velocity_clamp=(-settings.velocity_clamp, settings.velocity_clamp),
                ftol=1e-12,
                ftol_iter=settings.stall_iterations,
            )
            if settings.neighbours is None:
                from pyswarms.backend.topology import Star

                optimiser.top = Star()
            if settings.seeded:
                optimiser.swarm.velocity = np.where(init_pos == 1, 1.0, -1.0) * settings.velocity_clamp
            _, best = optimiser.optimize(lambda x: self.fitness(problem, x), iters=settings.iterations, verbose=False)
        finally:
            np.random.set_state(saved)
        answer = np.asarray(best).astype(bool)
        if settings.repaired:
            answer = improve(problem, repair(problem, answer))
        return evaluate(problem, answer, self.name)
