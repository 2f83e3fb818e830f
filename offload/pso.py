"""The paper's decider: binary particle swarm optimisation (Algorithm 1) with pyswarms' BinaryPSO.

Plain BinaryPSO on this problem is weak (it was measured at a 6–9% gap to the optimum at N = 100 with 50
particles × 100 iterations, and no feasible answer when C3 binds), because a binary swarm samples every bit
afresh each iteration and a penalty alone rarely steers it into a tight feasible region. Four additions,
each switchable for comparison:
  - seeding a fraction of the swarm: 10 % of the particles start at the greedy answer, repaired all-local and
    all-offload (and greedy with a few bits flipped), velocities pointing at them; the others start uniformly
    at random. Seeding the whole swarm trapped it: every particle's memory began at greedy, the swarm never left
    it, and on instances where a constraint binds the answer stayed up to 8 % off (2.9 % on this repository's
    binding families, offload/synthetic.py) while the unseeded swarm found the optimum;
  - penalties: fitness = objective + `penalty` × normalised overshoot of C1–C3 + C4 breaches, so a feasible
    position always beats an infeasible one in practice;
  - restarts (batches up to 32 tasks): a swarm that stalls (10 iterations without improvement) hands the
    iterations left to a fresh random swarm; 30 particles × 24 iterations in all (the former default ran
    30 × up to 40 and usually stalled after ~15);
  - repair of the swarm's memory: on batches up to 32 tasks, the best distinct personal bests of every run
    (not only the swarm's best) and the greedy answer are repaired and improved by single feasible flips
    (offload/heuristics.py); the best two of those are then improved by pair moves (swap one task's side for
    another's), which single flips cannot do once a constraint binds. Larger batches: the swarm's best only.
Measured on the binding families of offload/synthetic.py (N = 7–14, 1350 runs): worst gap 0.81 % (the former
default: 2.9 %; an independent check found up to 8 %); bench/offload_decide.py compares their CPU time.
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

from offload.costmodel import BoolArray, Decision, OffloadProblem, evaluate
from offload.heuristics import PAIR_MOVES_UP_TO, apply_memory_rule, greedy, improve, improve_pairs, overshoot, repair

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
    iterations: int = 24  # in all: restarts share this budget
    c1: float = 1.5  # pull towards each particle's own best
    c2: float = 1.5  # pull towards the swarm's best
    w: float = 1.0  # inertia; Kennedy & Eberhart's binary PSO keeps the whole velocity
    velocity_clamp: float = 4.0  # |v| ≤ 4 keeps every bit's flip probability ≥ 1.8%
    neighbours: int | None = None  # ring topology with k neighbours; None = global best (star)
    seeded: bool = True
    seed_fraction: float = 0.1  # share of the particles started at greedy and its kin; the rest start at random
    repaired: bool = True
    polish_memory: int = 5  # how many of the best distinct personal bests are also repaired and improved
    pair_polish: int = 2  # how many of the best repaired answers also get pair moves (0: none)
    penalty: float = 1000.0
    stall_iterations: int = 10  # stop after this many iterations without improvement
    restart: bool = True  # a swarm that stalls early hands the iterations left to a fresh random swarm


# Generic binary-PSO settings, for comparison. The paper names binary PSO (its Algorithm 1) but gives no swarm
# size, iteration count or coefficients; these are ours: 50 particles × 100 iterations, c1 = c2 = 0.5, w = 0.9
# (usual textbook values), no seeding, repair or early stop — a penalty is its only help.
PLAIN_SETTINGS = PsoSettings(
    particles=50,
    iterations=100,
    c1=0.5,
    c2=0.5,
    w=0.9,
    velocity_clamp=6.0,
    neighbours=None,
    seeded=False,
    repaired=False,
    polish_memory=0,
    pair_polish=0,
    stall_iterations=100,
    restart=False,
)


def _best_feasible(problem: OffloadProblem, candidates: list[BoolArray]) -> BoolArray:
    """The lowest objective among the feasible candidates; without any, the one overshooting least."""
    feasible = [x for x in candidates if not problem.violated(x)]
    if feasible:
        return min(feasible, key=lambda x: float(problem.objective(x)))
    return min(candidates, key=lambda x: float(overshoot(problem, x)))


def _distinct_best(problem: OffloadProblem, candidates: list[BoolArray], count: int) -> list[BoolArray]:
    """Up to `count` distinct candidates, feasible ones first, by objective."""
    ranked = sorted(candidates, key=lambda x: (bool(problem.violated(x)), float(problem.objective(x))))
    chosen: list[BoolArray] = []
    for x in ranked:
        if len(chosen) == count:
            break
        if not any(np.array_equal(x, other) for other in chosen):
            chosen.append(x)
    return chosen


def _distinct_rows(rows: np.ndarray, count: int) -> list[BoolArray]:
    out: list[BoolArray] = []
    seen: set[bytes] = set()
    for row in rows:
        key = row.tobytes()
        if key not in seen:
            seen.add(key)
            out.append(row)
            if len(out) == count:
                break
    return out


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

    def _seeded_count(self) -> int:
        return max(1, round(self.settings.seed_fraction * self.settings.particles)) if self.settings.seeded else 0

    def _seeds(self, problem: OffloadProblem, rng: np.random.Generator, start: BoolArray | None) -> np.ndarray:
        count, n = self.settings.particles, problem.n
        positions = rng.random((count, n)) < 0.5
        if start is None:
            return positions
        seeded = min(self._seeded_count(), count)
        anchors = [start, repair(problem, np.zeros(n, bool)), repair(problem, np.ones(n, bool))]
        for i, anchor in enumerate(anchors[:seeded]):
            positions[i] = anchor
        for i in range(len(anchors), seeded):
            # Greedy with a few bits flipped: diversity near a good feasible point.
            flips = rng.random(n) < min(0.5, 3 / n)
            positions[i] = apply_memory_rule(problem, start ^ flips)
        return positions

    def _swarm(self, problem: OffloadProblem, init_pos: np.ndarray, seeded: int, iterations: int) -> Any:
        """One pyswarms BinaryPSO run from `init_pos` (its first `seeded` rows heading for their seeds)."""
        settings = self.settings
        k = settings.neighbours or settings.particles
        options = {"c1": settings.c1, "c2": settings.c2, "w": settings.w, "k": min(k, settings.particles), "p": 2}
        optimiser = _import_binary_pso()(
            n_particles=settings.particles,
            dimensions=problem.n,
            options=options,
            init_pos=init_pos.astype(np.int64),
            velocity_clamp=(-settings.velocity_clamp, settings.velocity_clamp),
            ftol=1e-12,
            ftol_iter=settings.stall_iterations,
        )
        if settings.neighbours is None:
            from pyswarms.backend.topology import Star

            optimiser.top = Star()
        if seeded:
            # Seeded particles head for their seeds; the random ones start still (each bit a fair coin).
            velocity = np.where(init_pos == 1, 1.0, -1.0) * settings.velocity_clamp
            velocity[seeded:] = 0.0
            optimiser.swarm.velocity = velocity
        optimiser.optimize(lambda x: self.fitness(problem, x), iters=iterations, verbose=False)
        return optimiser

    def decide(self, problem: OffloadProblem, rng: np.random.Generator) -> Decision:
        settings = self.settings
        start = greedy(problem) if settings.seeded else None
        init_pos = self._seeds(problem, rng, start)
        seeded = self._seeded_count()
        runs: list[Any] = []
        saved = np.random.get_state()
        np.random.seed(int(rng.integers(0, 2**32 - 1)))
        try:
            left = settings.iterations
            while left > 0:
                optimiser = self._swarm(problem, init_pos, seeded, left)
                runs.append(optimiser)
                left -= len(optimiser.cost_history)
                # Large batches: a fresh random swarm lands far from feasible and costs as much as the first.
                if not settings.restart or left <= settings.stall_iterations or problem.n > PAIR_MOVES_UP_TO:
                    break
                # The swarm stalled early: spend the iterations left on a fresh random swarm (a restart).
                init_pos, seeded = rng.random((settings.particles, problem.n)) < 0.5, 0
        finally:
            np.random.set_state(saved)
        best_run = min(runs, key=lambda run: float(run.swarm.best_cost))
        answer = np.asarray(best_run.swarm.best_pos).astype(bool)
        if not settings.repaired:
            return evaluate(problem, answer, self.name)
        found = [answer]
        # On larger batches the extra repairs cost more than they found: the swarm's best alone was within 0.004 %.
        if settings.polish_memory > 0 and problem.n <= PAIR_MOVES_UP_TO:
            memory = np.concatenate([np.asarray(run.swarm.pbest_pos) for run in runs]).astype(bool)
            costs = np.concatenate([np.asarray(run.swarm.pbest_cost) for run in runs])
            found.extend(_distinct_rows(memory[np.argsort(costs, kind="stable")], settings.polish_memory))
        candidates = [improve(problem, repair(problem, x)) for x in found]
        if start is not None:
            candidates.append(improve(problem, start))
        if settings.pair_polish > 0:
            candidates = [improve_pairs(problem, x) for x in _distinct_best(problem, candidates, settings.pair_polish)]
        return evaluate(problem, _best_feasible(problem, candidates), self.name)
