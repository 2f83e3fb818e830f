"""`ehrnet chaos run EXPERIMENT`: run one Chaos Toolkit experiment through chaostoolkit-lib's `run_experiment`.

EXPERIMENT is a file or the name of one in network_configs/chaos/ (`--short` picks its `-short` form). The seed and
output directory reach the experiment as Chaos Toolkit configuration variables; the control declared in the
experiment (node/chaos/control.py) does the rest. Exit code 0 iff the run completed, every fault was injected
and healed as planned, and every invariant held; 1 otherwise; 4 if the experiment was skipped (e.g. it needs
network namespaces and the runner is not root); 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

EXPERIMENTS_DIR = Path(__file__).resolve().parents[2] / "network_configs" / "chaos"
EXIT_SKIPPED = 4


def register(sub: SubParsers) -> None:
    chaos = sub.add_parser("chaos", help="fault-injection experiments (Chaos Toolkit)").add_subparsers(
        dest="chaos_cmd", required=True
    )
    run = chaos.add_parser("run", help="bring a cluster up, inject the seeded faults under load, check invariants")
    run.add_argument("experiment", help="experiment file, or a name in network_configs/chaos/ (e.g. smoke)")
    run.add_argument("--seed", type=int, default=None, help="schedule seed (default: the experiment's)")
    run.add_argument("--out", type=Path, default=None, help="directory for journal, report and timeline")
    run.add_argument("--short", action="store_true", help="the experiment's short form (NAME-short.json)")
    run.add_argument("--data-dir", type=Path, default=None, help="cluster data dir (default: OUT/cluster)")
    run.add_argument("--target-running", action="store_true", help="use the cluster already running in --data-dir")
    run.set_defaults(func=cmd_run)
    ls = chaos.add_parser("list", help="the shipped experiments")
    ls.set_defaults(func=cmd_list)
    again = chaos.add_parser("check", help="check a finished run's history.json again (no cluster needed)")
    again.add_argument("out", type=Path, help="the run's output directory (with journal.json and history.json)")
    again.set_defaults(func=cmd_check)


def resolve_experiment(name: str, short: bool) -> Path:
    from node.cli.dispatch import CliError

    candidate = Path(name)
    if candidate.suffix == ".json" and candidate.exists():
        return candidate
    stem = name.removesuffix(".json") + ("-short" if short and not name.endswith("-short") else "")
    path = EXPERIMENTS_DIR / f"{stem}.json"
    if not path.exists():
        known = sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.json"))
        raise CliError(f"experiment: no {path.name} in {EXPERIMENTS_DIR} (known: {', '.join(known)})")
    return path


def cmd_list(args: argparse.Namespace) -> int:
    for path in sorted(EXPERIMENTS_DIR.glob("*.json")):
        doc = json.loads(path.read_text())
        print(f"{path.stem:<28} {doc.get('title', '')}")
    return 0


def run(path: Path, seed: int | None, out: Path, data_dir: Path | None, target_running: bool) -> int:
    from chaoslib.experiment import run_experiment
    from chaoslib.loader import load_experiment

    from node.chaos import control
    from node.chaos.session import close_current
    from node.cli.dispatch import CliError

    if target_running and data_dir is None:
        raise CliError("--target-running: needs --data-dir of the running cluster")
    experiment: dict[str, Any] = load_experiment(str(path))
    config_vars: dict[str, Any] = {"out_dir": str(out.resolve())}
    if seed is not None:
        config_vars["seed"] = seed
    if data_dir is not None:
        config_vars["data_dir"] = str(data_dir.resolve())
    if target_running:
        config_vars["target_running"] = True
    # Rollbacks (heal everything) run whatever happened, Ctrl-C included.
    settings = {"runtime": {"rollbacks": {"strategy": "always"}}}
    out.mkdir(parents=True, exist_ok=True)
    try:
        journal = run_experiment(experiment, settings=settings, experiment_vars=(config_vars, {}))
    finally:
        close_current()
    (out / "journal.json").write_text(json.dumps(journal, indent=2, default=str) + "\n")
    if control.RESULT.get("skipped"):
        print(f"skipped: {control.RESULT['skipped']}")
        return EXIT_SKIPPED
    text = control.RESULT.get("report", "no report (the control did not run)\n")
    print(text)
    print(f"journal, report, history and timeline in {out.resolve()}")
    verdict = control.RESULT.get("verdict")
    ok = (
        journal.get("status") == "completed"
        and not journal.get("deviated")
        and verdict is not None
        and verdict.ok
        and not control.RESULT.get("failed_activities")
    )
    return 0 if ok else 1


def cmd_run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    path = resolve_experiment(args.experiment, args.short)
    out = args.out or Path("chaos-out") / path.stem
    return run(path, args.seed, out, args.data_dir, args.target_running)


def cmd_check(args: argparse.Namespace) -> int:
    """The invariant checker over the recorded files alone, with the bounds of the experiment as it was run."""
    from node.chaos import invariants, report
    from node.chaos.history import Bounds, History
    from node.cli.dispatch import CliError

    try:
        journal = json.loads((args.out / "journal.json").read_text())
        history = History.from_json(json.loads((args.out / "history.json").read_text()))
        bounds = Bounds.from_json(journal["experiment"]["configuration"]["bounds"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CliError(f"out: {args.out} does not hold a finished run ({type(exc).__name__}: {exc})") from exc
    verdict = invariants.check(history, bounds)
    title = str(journal["experiment"].get("title", "experiment"))
    seed = int(journal["experiment"]["configuration"].get("seed", 0))
    print(report.render(title, seed, str(journal.get("status")), verdict, []))
    return 0 if verdict.ok else 1
