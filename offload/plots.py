"""PNG figures of the offloading experiment (matplotlib's Agg renderer, no display, no pyplot state)."""

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


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _series(rows: Sequence[dict[str, Any]], method: str, column: str) -> tuple[list[int], list[float]]:
    mine = sorted((r for r in rows if r["method"] == method), key=lambda r: int(r["n_tasks"]))
    return [int(r["n_tasks"]) for r in mine], [float(r[column]) for r in mine]


def _series_flags(rows: Sequence[dict[str, Any]], method: str) -> list[bool]:
    mine = sorted((r for r in rows if r["method"] == method), key=lambda r: int(r["n_tasks"]))
    return [r["feasible"] == "true" for r in mine]


def plot_metrics(rows: Sequence[dict[str, Any]], methods: Sequence[str], path: Path) -> None:
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
    figure.axes[0].legend(fontsize=8)
    figure.suptitle("Offloading decisions, paper's phone (Snapdragon 845) and edge (Xeon 2.5 GHz); x = infeasible")
    figure.savefig(path)


def plot_decision_time(rows: Sequence[dict[str, Any]], methods: Sequence[str], path: Path) -> None:
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
    figure.savefig(path)


def plot_gap(gaps: Sequence[dict[str, Any]], methods: Sequence[str], path: Path) -> None:
    """Each heuristic's gap to the exact optimum, per instance, against N."""
    figure = _figure(6.5, 4.5)
    axis = figure.subplots()
    for method in methods:
        mine = [g for g in gaps if g["method"] == method and g["gap_pct"] != ""]
        axis.scatter([int(g["n_tasks"]) for g in mine], [float(g["gap_pct"]) for g in mine], s=14, label=method)
    axis.set_xscale("log")
    axis.set_xlabel("number of tasks N")
    axis.set_ylabel("gap to the MILP optimum (%)")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    figure.savefig(path)
