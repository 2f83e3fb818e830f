"""A fast smoke run of the experiment and the CLI command that starts it."""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from offload import cli, experiment
from offload.costmodel import CONSTRAINT_MEANING
from offload.experiment import GAP_COLUMNS, RESULT_COLUMNS, ExperimentPlan, run_offload_experiment
from offload.plots import coinciding_sizes, decision_time_figure, gap_figure, metrics_figure

TINY = ExperimentPlan(task_counts=(4, 8), instances=1, windows_s=(10, 20), profile_repeats=1, deadline_slack=0.5)


def test_tiny_experiment_writes_csv_and_plots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = run_offload_experiment(tmp_path, quick=True, progress=False, plan=TINY)
    with results.open() as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == RESULT_COLUMNS
    methods = {row["method"] for row in rows}
    assert methods == {"all-local", "all-offload", "random", "greedy", "pso", "pso-plain", "milp"}
    assert {int(row["n_tasks"]) for row in rows} == {4, 8}
    for row in rows:
        if row["method"] == "all-local":
            assert float(row["objective"]) == pytest.approx(1.0)
        if row["method"] == "milp" and row["feasible"] == "true":
            others = [float(r["objective"]) for r in rows if r["n_tasks"] == row["n_tasks"] and r["feasible"] == "true"]
            assert float(row["objective"]) <= min(others) + 1e-9
    with (tmp_path / "gaps.csv").open() as handle:
        gaps = list(csv.DictReader(handle))
    assert tuple(gaps[0]) == GAP_COLUMNS
    assert all(g["feasible"] in ("true", "false") and (g["gap_pct"] == "" or g["feasible"] == "true") for g in gaps)
    for name in ("metrics.png", "decision_time.png", "pso_gap.png", "gaps.csv", "profiles.csv"):
        assert (tmp_path / name).stat().st_size > 0
        assert (tmp_path / "deadline" / name).exists() or name == "profiles.csv"

    # A second run reuses the stored profiles instead of measuring again.
    def no_profiling(*args: object, **kwargs: object) -> None:
        raise AssertionError("profiles should have come from the store")

    monkeypatch.setattr(experiment, "profile_windows", no_profiling)
    run_offload_experiment(tmp_path, quick=True, progress=False, plan=TINY)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="ehrnet")
    cli.register(root.add_subparsers(dest="command"))
    return root


def test_cli_parses_the_command() -> None:
    args = parser().parse_args(["experiment", "offload", "--quick", "--out", "/tmp/somewhere"])
    assert args.quick is True and args.out == Path("/tmp/somewhere") and callable(args.func)


def test_cli_requires_out() -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["experiment", "offload", "--quick"])


def test_cli_handler_runs_the_experiment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Path, bool, bool]] = []

    def fake(out_dir: Path, quick: bool, progress: bool) -> Path:
        calls.append((out_dir, quick, progress))
        return out_dir / "results.csv"

    monkeypatch.setattr(experiment, "run_offload_experiment", fake)
    args = parser().parse_args(["experiment", "offload", "--quick", "--out", str(tmp_path), "--no-progress"])
    assert args.func(args) == 0
    assert calls == [(tmp_path, True, False)]


def test_registering_the_command_imports_nothing_heavy() -> None:
    code = (
        "import argparse, sys\n"
        "from offload import cli\n"
        "cli.register(argparse.ArgumentParser().add_subparsers())\n"
        "heavy = [m for m in ('numpy', 'scipy', 'pyswarms', 'matplotlib', 'heartpy', 'nacl') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- what the plots show ---------------------------------------------------------------------------------------


def gap_rows() -> list[dict[str, str]]:
    rows = []
    for n in (10, 100):
        for instance in range(3):
            base = {"n_tasks": str(n), "instance": str(instance)}
            rows.append({**base, "method": "pso", "gap_pct": "0.0000", "feasible": "true"})
            plain_ok = instance == 0
            gap, feasible = ("3.5000", "true") if plain_ok else ("", "false")
            rows.append({**base, "method": "pso-plain", "gap_pct": gap, "feasible": feasible})
    return rows


def points_drawn(figure: Any) -> int:
    return sum(len(collection.get_offsets()) for axis in figure.axes for collection in axis.collections)


def texts_of(figure: Any) -> str:
    return " ".join(t.get_text() for axis in figure.axes for t in axis.texts)


def test_gap_plot_shows_infeasible_answers_instead_of_dropping_them() -> None:
    rows = gap_rows()
    figure = gap_figure(rows, ["pso", "pso-plain"], "T_max = all-local time")
    assert points_drawn(figure) == len(rows)  # 12 answers, 4 of them infeasible: all 12 drawn
    labels = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert "pso-plain (4 of 6 infeasible; 0 of 2 feasible at the optimum)" in labels
    assert "pso (6 of 6 feasible at the optimum)" in labels
    assert "infeasible" in texts_of(figure)


def result_rows(same: bool) -> list[dict[str, str]]:
    rows = []
    for n in (10, 100):
        for method, objective in (("greedy", 0.8), ("pso", 0.8), ("milp", 0.8 if same else 0.7)):
            totals = {"time_s": "1", "energy_mAh": "1", "memory_MB": "1", "decision_ms": "1", "feasible": "true"}
            rows.append({"n_tasks": str(n), "method": method, "objective": str(objective), **totals})
    return rows


def test_every_plot_has_a_title_of_its_own_and_says_when_lines_coincide() -> None:
    methods = ["greedy", "pso", "milp"]
    main, deadline = "T_max = all-local time", "binding deadline (slack 0.5)"
    titles = [
        metrics_figure(result_rows(True), methods, main).get_suptitle(),
        metrics_figure(result_rows(True), methods, deadline).get_suptitle(),
        decision_time_figure(result_rows(True), methods, main).axes[0].get_title(),
        decision_time_figure(result_rows(True), methods, deadline).axes[0].get_title(),
        gap_figure(gap_rows(), ["pso"], main).axes[0].get_title(),
        gap_figure(gap_rows(), ["pso"], deadline).axes[0].get_title(),
    ]
    assert all(titles) and len(set(titles)) == len(titles)
    assert coinciding_sizes(result_rows(True)) == ([10, 100], 0.0)
    assert "greedy, pso, milp overlap at N = 10, 100: the same objective" in texts_of(
        metrics_figure(result_rows(True), methods, main)
    )
    assert coinciding_sizes(result_rows(False)) == ([], 0.0)
    assert "overlap" not in texts_of(metrics_figure(result_rows(False), methods, main))


def test_c4_is_explained_per_task() -> None:
    assert "every task" in CONSTRAINT_MEANING["C4"] and "total memory" not in CONSTRAINT_MEANING["C4"]


def test_quick_help_states_the_measured_run_time(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["experiment", "offload", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "2 minutes" not in text and "15 s of CPU" in text
