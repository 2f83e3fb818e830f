"""The paper's evaluation (Sec. IV), reproduced: totals and objective against N for every decider, the
heuristics' gap to the exact optimum, and decision time against N.

Workload: both task kinds profiled on this machine at a few window lengths (offload/workload.py), costs
mapped to the paper's phone and edge by their TOML profiles, batches of N tasks drawn from a fixed seed.
Profiles are kept in `<out>/profiles/` and reused by the next run, as the paper's device reuses its profile
database. Outputs in `out_dir`:
  results.csv   n_tasks,method,time_s,energy_mAh,memory_MB,objective,decision_ms,feasible,optimality_gap_pct,
                time_limited (means over the instances of each N; decision_ms is the median; feasible = every
                instance; the MILP's largest proven gap and how many of its instances hit the time limit)
  gaps.csv      n_tasks,instance,method,objective,optimum,gap_pct,feasible (heuristics against the MILP optimum;
                gap_pct empty where the heuristic's answer or the instance is infeasible)
  profiles.csv  the measured task profiles: median CPU and wall time, CPU spread, repeats, load average
  metrics.png, decision_time.png, pso_gap.png
With T_max equal to the all-local time C3 adds nothing to C1, so the same figures are also produced, in
`<out>/deadline/`, for a binding deadline: T_max = T_fast + slack × (T_local - T_fast), where T_fast is the
time if every task took its faster side (slack 0.5 by default).
"""

from __future__ import annotations

import csv
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from offload.costmodel import Decision, OffloadProblem
from offload.deciders import AllLocal, AllOffload, Decider, GreedyDecider, MilpDecider, RandomDecider
from offload.device import EDGE, PHONE, builtin_profile
from offload.plots import decision_time_figure, gap_figure, metrics_figure, save
from offload.profiler import TaskProfile
from offload.pso import PLAIN_SETTINGS, PsoDecider
from offload.store import ProfileStore
from offload.workload import TASK_KINDS, cost_curves, profile_windows, sample_batch, window_key

RESULT_COLUMNS = (
    "n_tasks",
    "method",
    "time_s",
    "energy_mAh",
    "memory_MB",
    "objective",
    "decision_ms",
    "feasible",
    "optimality_gap_pct",
    "time_limited",
)
# The reference optimum may take longer than a device would wait (MilpDecider's default is 2 s of wall clock):
# the experiment allows more (ExperimentPlan.milp_time_limit_s), and results.csv reports any instance that
# still stopped, with its proven gap.
GAP_COLUMNS = ("n_tasks", "instance", "method", "objective", "optimum", "gap_pct", "feasible")
SEED = 2103_10186  # the paper's arXiv number
REFERENCE_DEVICE = "reference-core"  # this machine, standing in for the edge's 2.5 GHz x86 core


@dataclass(frozen=True)
class ExperimentPlan:
    task_counts: tuple[int, ...]
    instances: int
    windows_s: tuple[float, ...]
    profile_repeats: int
    deadline_slack: float | None = 0.5  # the second scenario's binding deadline; None skips it
    milp_time_limit_s: float = 5.0  # for the reference MILP

    @classmethod
    def for_mode(cls, quick: bool) -> ExperimentPlan:
        if quick:
            return cls(task_counts=(10, 100, 1000), instances=3, windows_s=(10, 60, 300, 600), profile_repeats=3)
        return cls(
            task_counts=(10, 20, 50, 100, 200, 500, 1000),
            instances=10,
            windows_s=(10, 30, 60, 120, 300, 600),
            profile_repeats=5,
            milp_time_limit_s=30.0,
        )


def deciders(milp_time_limit_s: float = 5.0) -> list[Decider]:
    return [
        AllLocal(),
        AllOffload(),
        RandomDecider(),
        GreedyDecider(),
        PsoDecider(),
        PsoDecider(PLAIN_SETTINGS, name="pso-plain"),
        MilpDecider(time_limit_s=milp_time_limit_s),
    ]


PROFILE_COLUMNS = (
    "key",
    "task",
    "input_bits",
    "local_s",
    "local_wall_s",
    "local_spread_s",
    "repeats",
    "load_1m",
    "local_peak_bytes",
    "encrypt_s",
    "encrypt_wall_s",
    "encrypt_peak_bytes",
)


def _profile_row(profile: TaskProfile) -> dict[str, Any]:
    return {column: value for column, value in profile.to_json().items() if column in PROFILE_COLUMNS}


def load_or_profile(store: ProfileStore, plan: ExperimentPlan, rng: np.random.Generator) -> list[TaskProfile]:
    """The profiles the plan needs, measured only if the store lacks them."""
    edge = builtin_profile(EDGE)
    stored = store.load(REFERENCE_DEVICE)
    wanted = [window_key(kind, seconds) for kind in TASK_KINDS for seconds in plan.windows_s]
    if all(key in stored for key in wanted):
        return [stored[key] for key in wanted]
    measured = profile_windows(plan.windows_s, rng, reference_hz=edge.effective_hz, repeats=plan.profile_repeats)
    store.put(REFERENCE_DEVICE, measured)
    return measured


def _timed(decider: Decider, problem: OffloadProblem, rng: np.random.Generator) -> tuple[Decision, float]:
    start = time.perf_counter()
    decision = decider.decide(problem, rng)
    return decision, (time.perf_counter() - start) * 1000


def _write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)


def _summarise(n: int, method: str, decisions: list[tuple[Decision, float]]) -> dict[str, Any]:
    return {
        "n_tasks": n,
        "method": method,
        "time_s": f"{np.mean([d.time_s for d, _ in decisions]):.6g}",
        "energy_mAh": f"{np.mean([d.energy_mah for d, _ in decisions]):.6g}",
        "memory_MB": f"{np.mean([d.memory_mb for d, _ in decisions]):.6g}",
        "objective": f"{np.mean([d.objective for d, _ in decisions]):.6g}",
        "decision_ms": f"{np.median([ms for _, ms in decisions]):.4g}",
        "feasible": "true" if all(d.feasible for d, _ in decisions) else "false",
        "optimality_gap_pct": _largest_gap(decisions),
        "time_limited": sum(d.time_limited for d, _ in decisions),
    }


def _largest_gap(decisions: list[tuple[Decision, float]]) -> str:
    """The largest proven gap (%) over the instances, or "" for a decider that proves none."""
    gaps = [d.optimality_gap for d, _ in decisions if d.optimality_gap is not None]
    return f"{100 * max(gaps):.3g}" if gaps else ""


def _deadline(problem: OffloadProblem, slack: float) -> float:
    local_time = float(problem.all_local[0])
    fastest = float(np.minimum(problem.local[:, 0], problem.offload[:, 0]).sum())
    return fastest + slack * (local_time - fastest)


def _run_scenario(
    out_dir: Path,
    plan: ExperimentPlan,
    profiles: list[TaskProfile],
    slack: float,
    rng: np.random.Generator,
    progress: bool,
) -> Path:
    from tqdm import tqdm

    out_dir.mkdir(parents=True, exist_ok=True)
    phone, edge = builtin_profile(PHONE), builtin_profile(EDGE)
    curves = cost_curves(profiles)
    methods = deciders(plan.milp_time_limit_s)
    gaps: list[dict[str, Any]] = []
    by_method: dict[tuple[int, str], list[tuple[Decision, float]]] = {}
    grid = [(n, i) for n in plan.task_counts for i in range(plan.instances)]
    label = "offload experiment" if slack >= 1 else f"offload experiment, deadline slack {slack:g}"
    for n, instance in tqdm(grid, desc=label, disable=not progress, file=sys.stderr, unit="batch"):
        batch = sample_batch(curves, n, rng)
        unlimited = OffloadProblem.from_profiles(batch, phone, edge, t_max_s=1e12)
        problem = OffloadProblem.from_profiles(batch, phone, edge, _deadline(unlimited, slack))
        outcomes = {decider.name: _timed(decider, problem, rng) for decider in methods}
        for name, outcome in outcomes.items():
            by_method.setdefault((n, name), []).append(outcome)
        optimum = outcomes["milp"][0]
        for name in ("pso", "pso-plain", "greedy"):
            decision = outcomes[name][0]
            gap = ""
            if optimum.feasible and decision.feasible:
                gap = f"{(decision.objective - optimum.objective) / optimum.objective * 100:.4f}"
            row = {"n_tasks": n, "instance": instance, "method": name, "gap_pct": gap}
            row["feasible"] = "true" if decision.feasible else "false"
            row.update(objective=f"{decision.objective:.8g}", optimum=f"{optimum.objective:.8g}")
            gaps.append(row)
    results = [_summarise(n, d.name, by_method[(n, d.name)]) for n in plan.task_counts for d in methods]

    results_path = out_dir / "results.csv"
    _write_csv(results_path, RESULT_COLUMNS, results)
    _write_csv(out_dir / "gaps.csv", GAP_COLUMNS, gaps)
    names = [d.name for d in methods]
    scenario = "T_max = all-local time" if slack >= 1 else f"binding deadline (slack {slack:g})"
    save(metrics_figure(results, names, scenario), out_dir / "metrics.png")
    deciding = [name for name in names if name not in ("all-local", "all-offload")]
    save(decision_time_figure(results, deciding, scenario), out_dir / "decision_time.png")
    save(gap_figure(gaps, ["pso", "pso-plain", "greedy"], scenario), out_dir / "pso_gap.png")
    return results_path


def run_offload_experiment(out_dir: Path, quick: bool, progress: bool, plan: ExperimentPlan | None = None) -> Path:
    """Run the evaluation, write the CSVs and plots into `out_dir`, return the path of results.csv."""
    plan = plan or ExperimentPlan.for_mode(quick)
    out_dir.mkdir(parents=True, exist_ok=True)
    profiles = load_or_profile(ProfileStore(out_dir / "profiles"), plan, np.random.default_rng(SEED))
    _write_csv(out_dir / "profiles.csv", PROFILE_COLUMNS, [_profile_row(p) for p in profiles])
    results = _run_scenario(out_dir, plan, profiles, 1.0, np.random.default_rng([SEED, 1]), progress)
    if plan.deadline_slack is not None:
        rng = np.random.default_rng([SEED, 2])
        _run_scenario(out_dir / "deadline", plan, profiles, plan.deadline_slack, rng, progress)
    return results
