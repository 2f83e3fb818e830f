"""`ehrnet experiment offload [--quick] --out DIR`: the command-line face of offload/experiment.py.

Nothing heavy is imported at module level (numpy, scipy, pyswarms, matplotlib load only when the command
runs), so registering the command costs the CLI's start-up nothing and light clients stay small.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _run(args: argparse.Namespace) -> int:
    from offload.errors import OffloadError
    from offload.experiment import run_offload_experiment

    started = time.perf_counter()
    try:
        results = run_offload_experiment(Path(args.out), quick=args.quick, progress=not args.no_progress)
    except (OffloadError, OSError) as exc:
        print(f"offload experiment failed: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {results} and plots in {time.perf_counter() - started:.1f} s")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `experiment offload [--quick] --out DIR` to the ehrnet command line. The `experiment` group is this
    module's: the offloading evaluation is the one experiment the CLI reproduces."""
    experiments = subparsers.add_parser("experiment", help="reproduce the paper's evaluations").add_subparsers(
        dest="experiment", required=True, metavar="NAME"
    )
    parser = experiments.add_parser(
        "offload",
        help="offloading decisions: totals, objective, PSO gap and decision time against N",
        description="Reproduce the paper's offloading evaluation and write results.csv and PNG plots.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer sizes and instances (about 15 s of CPU; 40-170 s of wall time on a busy 2-core machine)",
    )
    parser.add_argument("--out", required=True, type=Path, help="directory for results.csv, plots, profiles")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run)
