"""Decision time against N for the MILP and PSO deciders, and PSO's gap to the optimum.

    .venv/bin/python -m bench.offload_decide [--instances 5] [--only workload|synthetic|binding]

Four instance families: "workload" (tasks profiled on this machine and mapped to the paper's phone and edge,
as in the experiment, T_max = all-local time), "workload+deadline" (the same with a binding deadline, slack
0.5), "synthetic" (offload/synthetic.py, T_max = 95% of the all-local time: knapsacks on which greedy is
visibly suboptimal), and "binding" (offload/synthetic.binding_problem, C1..C4 binding, N = 4..14, gaps against
the exhaustive checker). Times are medians over instances (wall and CPU: the machine may be shared); gaps are
(decider - optimum) / optimum over instances the MILP found feasible. "pso-former" is the PSO's former default
(whole swarm seeded at greedy, only its best repaired), kept here so the cost of the new default is a ratio
measured in the same run. The workload families are re-profiled on every run, so their instances (and the
MILP's effort on them) change with the machine's timing noise.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from offload.bruteforce import brute_force
from offload.costmodel import OffloadProblem
from offload.deciders import Decider, GreedyDecider, MilpDecider
from offload.device import EDGE, PHONE, builtin_profile
from offload.pso import PLAIN_SETTINGS, PsoDecider, PsoSettings
from offload.synthetic import FAMILIES, binding_problem, random_problem
from offload.workload import cost_curves, profile_windows, sample_batch

SIZES = (10, 100, 1000)
BINDING_SIZES = (4, 7, 10, 12, 14)
FORMER_PSO = PsoSettings(iterations=40, seed_fraction=1.0, polish_memory=0, pair_polish=0, restart=False)


def workload_problems(instances: int, rng: np.random.Generator, slack: float = 0.5) -> dict[int, list[OffloadProblem]]:
    phone, edge = builtin_profile(PHONE), builtin_profile(EDGE)
    curves = cost_curves(profile_windows((10, 60, 300, 600), rng, reference_hz=edge.effective_hz, repeats=2))
    problems: dict[int, list[OffloadProblem]] = {}
    for n in SIZES:
        for _ in range(instances):
            batch = sample_batch(curves, n, rng)
            free = OffloadProblem.from_profiles(batch, phone, edge, 1e12)
            fastest = float(np.minimum(free.local[:, 0], free.offload[:, 0]).sum())
            deadline = fastest + slack * (float(free.all_local[0]) - fastest)
            problems.setdefault(n, []).append(OffloadProblem.from_profiles(batch, phone, edge, deadline))
    return problems


def synthetic_problems(instances: int, rng: np.random.Generator) -> dict[int, list[OffloadProblem]]:
    return {n: [random_problem(n, rng, t_max_fraction=0.95) for _ in range(instances)] for n in SIZES}


HEADER = ("N", "method", "median ms", "max ms", "median cpu ms", "gap mean %", "gap max %", "infeasible")


def binding_problems(instances: int) -> dict[int, list[OffloadProblem]]:
    """Per N, `instances` seeded instances of every binding family (offload/synthetic.py)."""
    return {
        n: [
            binding_problem(n, family, np.random.default_rng([n, seed, FAMILIES.index(family)]))
            for family in FAMILIES
            for seed in range(instances)
        ]
        for n in BINDING_SIZES
    }


def check_against_brute_force(problems: dict[int, list[OffloadProblem]], rng: np.random.Generator) -> None:
    """The MILP must equal the exhaustive optimum on every binding instance; print how many were checked."""
    checked = infeasible = 0
    for batch in problems.values():
        for problem in batch:
            exact, milp = brute_force(problem), MilpDecider().decide(problem, rng)
            if exact.objective is None:
                assert not milp.feasible and milp.conflict, "the MILP missed an infeasible instance"
                infeasible += 1
            else:
                assert abs(milp.objective - exact.objective) <= 1e-9 * exact.objective, "MILP != brute force"
            checked += 1
    print(f"\nbinding instances: MILP = brute force on {checked} ({infeasible} infeasible, detected)")


def report(family: str, problems: dict[int, list[OffloadProblem]], rng: np.random.Generator) -> None:
    deciders: list[Decider] = [
        MilpDecider(),
        PsoDecider(),
        PsoDecider(FORMER_PSO, name="pso-former"),
        PsoDecider(PLAIN_SETTINGS, name="pso-plain"),
        GreedyDecider(),
    ]
    for decider in deciders:  # first calls import scipy/pyswarms; keep that out of the timings
        decider.decide(random_problem(5, np.random.default_rng(0)), rng)
    print(f"\n{family} instances")
    print("{:>5} {:>10} {:>10} {:>8} {:>13} {:>10} {:>9} {:>10}".format(*HEADER))
    for n, batch in problems.items():
        optima = []
        for decider in deciders:
            walls, cpus, gaps, infeasible = [], [], [], 0
            for i, problem in enumerate(batch):
                wall, cpu = time.perf_counter(), time.process_time()
                decision = decider.decide(problem, rng)
                walls.append((time.perf_counter() - wall) * 1000)
                cpus.append((time.process_time() - cpu) * 1000)
                if decider.name == "milp":
                    optima.append(decision)
                optimum = optima[i]
                if not decision.feasible:
                    infeasible += 1
                elif optimum.feasible:
                    gaps.append((decision.objective - optimum.objective) / optimum.objective * 100)
            gap_mean = f"{np.mean(gaps):.3f}" if gaps else "-"
            gap_max = f"{np.max(gaps):.3f}" if gaps else "-"
            print(
                f"{n:>5} {decider.name:>10} {np.median(walls):>10.1f} {np.max(walls):>8.1f} {np.median(cpus):>13.1f} "
                f"{gap_mean:>10} {gap_max:>9} {infeasible:>7}/{len(batch)}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=5)
    parser.add_argument("--only", choices=("workload", "synthetic", "binding"), help="run one kind of family")
    args = parser.parse_args()
    rng = np.random.default_rng(2103)
    if args.only in (None, "workload"):
        report("workload", workload_problems(args.instances, rng, slack=1.0), rng)
        report("workload+deadline", workload_problems(args.instances, rng, slack=0.5), rng)
    if args.only in (None, "synthetic"):
        report("synthetic", synthetic_problems(args.instances, rng), rng)
    if args.only in (None, "binding"):
        binding = binding_problems(args.instances)
        check_against_brute_force(binding, rng)
        report("binding (C1..C4)", binding, rng)


if __name__ == "__main__":
    main()
