"""PNG figures of the offloading experiment (matplotlib's Agg renderer, no display, no pyplot state).

Each figure is built by a `*_figure` function (tested: titles, markers, notes) and written by `save`. Every
figure carries a title of its own naming the scenario; infeasible answers are drawn (crosses), never dropped;
and where greedy, PSO and the MILP give (nearly) the same objective — their lines or points lie on top of each
other — the figure says so in words.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

METRICS = (
    ("time_s", "total time (s)"),
    ("energy_mAh", "total energy (mAh)"),
    ("memory_MB", "total memory (MB)"),
    ("objective", "normalised objective (all-local = 1)"),
)
DEVICES = "paper's phone (Snapdragon 845) and edge (Xeon 2.5 GHz)"
COINCIDING = ("greedy", "pso", "milp")
OVERLAP = 0.005  # objectives closer than 0.5 % draw as one line at the plots' scale


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save(figure: Any, path: Path) -> None:
    figure.savefig(path)


def _series(rows: Sequence[dict[str, Any]], method: str, column: str) -> tuple[list[int], list[float]]:
    mine = sorted((r for r in rows if r["method"] == method), key=lambda r: int(r["n_tasks"]))
    return [int(r["n_tasks"]) for r in mine], [float(r[column]) for r in mine]


def _series_flags(rows: Sequence[dict[str, Any]], method: str) -> list[bool]:
    mine = sorted((r for r in rows if r["method"] == method), key=lambda r: int(r["n_tasks"]))
    return [r["feasible"] == "true" for r in mine]


def _spread(values: Sequence[float]) -> float:
    """(max − min) / max of some objectives, as a fraction."""
    return (max(values) - min(values)) / max(max(abs(v) for v in values), 1e-12)


def coinciding_sizes(
    rows: Sequence[dict[str, Any]], methods: Sequence[str] = COINCIDING, within: float = OVERLAP
) -> tuple[list[int], float]:
    """The task counts N at which `methods`' mean objectives lie within `within` (a fraction) of each other —
    their lines overlap on the plot — and the largest spread among those N."""
    present = [m for m in methods if any(r["method"] == m for r in rows)]
    if len(present) < 2:
        return [], 0.0
    series = {m: dict(zip(*_series(rows, m, "objective"), strict=True)) for m in present}
    sizes = sorted(set.intersection(*(set(s) for s in series.values())))
    spreads = {n: _spread([series[m][n] for m in present]) for n in sizes}
    same = [n for n in sizes if spreads[n] <= within]
    return same, max((spreads[n] for n in same), default=0.0)


def metrics_figure(rows: Sequence[dict[str, Any]], methods: Sequence[str], scenario: str) -> Any:
    """Time, energy, memory and objective against the number of tasks, one line per method."""
    figure = _figure(11, 7.5)
    for axis, (column, label) in zip(figure.subplots(2, 2).flat, METRICS, strict=True):
        for method in methods:
            xs, ys = _series(rows, method, column)
            (line,) = axis.plot(xs, ys, marker="o", markersize=3, label=method)
            # Infeasible answers (some constraint broken in some instance) get a cross so they are not mistaken
            # for competitors.
            bad = [(x, y) for x, y, ok in zip(xs, ys, _series_flags(rows, method), strict=True) if not ok]
            if bad:
                axis.scatter(*zip(*bad, strict=True), marker="x", s=40, color=line.get_color())
        axis.set_xscale("log")
        if column != "objective":
            axis.set_yscale("log")
        axis.set_xlabel("number of tasks N")
        axis.set_ylabel(label)
        axis.grid(True, which="both", alpha=0.3)
    same, spread = coinciding_sizes(rows)
    if same:
        how = "the same objective" if spread == 0 else f"objectives within {100 * spread:.2g} % of each other"
        note = f"{', '.join(COINCIDING)} overlap at N = {', '.join(map(str, same))}: {how}"
        figure.axes[3].text(0.02, 0.02, note, transform=figure.axes[3].transAxes, fontsize=7)
    figure.axes[0].legend(fontsize=8)
    figure.suptitle(f"Offloading decisions, {scenario}; {DEVICES}; x = infeasible")
    return figure


def decision_time_figure(rows: Sequence[dict[str, Any]], methods: Sequence[str], scenario: str) -> Any:
    figure = _figure(6.5, 4.5)
    axis = figure.subplots()
    for method in methods:
        xs, ys = _series(rows, method, "decision_ms")
        axis.plot(xs, [max(y, 1e-3) for y in ys], marker="o", label=method)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("number of tasks N")
    axis.set_ylabel("decision time (ms, median)")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    axis.set_title(f"Decision time against N, {scenario}", fontsize=9)
    return figure


def gap_figure(gaps: Sequence[dict[str, Any]], methods: Sequence[str], scenario: str) -> Any:
    """Each heuristic's gap to the exact optimum, per instance, against N; infeasible answers as crosses above
    the plotted gaps, counted in the legend."""
    figure = _figure(6.5, 4.5)
    axis = figure.subplots()
    rows = [g for g in gaps if g["method"] in methods]
    measured = [float(g["gap_pct"]) for g in rows if g["gap_pct"] != ""]
    ceiling = max([*measured, 0.0])
    infeasible_level = ceiling * 1.15 + 0.1
    for method in methods:
        mine = [g for g in rows if g["method"] == method]
        ok = [g for g in mine if g["gap_pct"] != ""]
        bad = [g for g in mine if g.get("feasible") == "false"]
        points = axis.scatter([int(g["n_tasks"]) for g in ok], [float(g["gap_pct"]) for g in ok], s=14)
        # Points at gap 0 lie on top of each other: the legend says how many answers equal the optimum.
        at_optimum = sum(1 for g in ok if abs(float(g["gap_pct"])) < 1e-7)
        parts = [f"{len(bad)} of {len(mine)} infeasible"] if bad else []
        if ok:
            parts.append(f"{at_optimum} of {len(ok)} feasible at the optimum")
        points.set_label(f"{method} ({'; '.join(parts)})" if parts else method)
        if bad:
            axis.scatter(
                [int(g["n_tasks"]) for g in bad], [infeasible_level] * len(bad), marker="x", s=30,
                color=points.get_facecolor()[0],
            )  # fmt: skip
    if any(g.get("feasible") == "false" for g in rows):
        axis.axhline(infeasible_level, color="grey", linewidth=0.5, linestyle=":")
        axis.text(0.99, infeasible_level, "x = infeasible answer (no gap) ", fontsize=7, va="bottom", ha="right",
                  transform=axis.get_yaxis_transform())  # fmt: skip
        axis.set_ylim(top=infeasible_level * 1.2)
    axis.set_xscale("log")
    axis.set_xlabel("number of tasks N")
    axis.set_ylabel("gap to the MILP optimum (%)")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8, loc="center right")
    axis.set_title(f"Heuristics' gap to the optimum per instance, {scenario}", fontsize=9)
    return figure
