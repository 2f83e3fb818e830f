"""A fast smoke run of the experiment and the CLI command that starts it."""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path

import pytest

from offload import cli, experiment
from offload.experiment import RESULT_COLUMNS, ExperimentPlan, run_offload_experiment

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


def test_cli_shares_the_experiment_table_with_other_subsystems() -> None:
    root = argparse.ArgumentParser(prog="ehrnet")
    commands = root.add_subparsers(dest="command")
    table = commands.add_parser("experiment").add_subparsers(dest="experiment")
    table.add_parser("sharing")
    cli.register(commands)
    assert root.parse_args(["experiment", "offload", "--out", "x"]).experiment == "offload"
    assert root.parse_args(["experiment", "sharing"]).experiment == "sharing"


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
