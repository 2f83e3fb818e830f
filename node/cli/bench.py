"""`ehrnet bench ledger|gas|contracts`: the benchmarks the installed command runs.

This module is the one place that builds the `bench` command group and its subcommands. The benchmarks
themselves live in bench/ (one module each, also runnable as `python -m bench.NAME`); a handler imports its
benchmark only when it runs, because the bodies pull in the VM, aiohttp and the cluster launcher, which neither
`ehrnet --help` nor `ehrnet node run` should pay for. Range checks on the options (a sender's nonce window, a VM
version) stay with the benchmark, which applies them to both ways of starting it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]


def register(sub: SubParsers) -> None:
    """Add `bench` and every benchmark under it."""
    bench = sub.add_parser("bench", help="benchmarks that print figures (ledger and contracts start a cluster)")
    commands = bench.add_subparsers(dest="bench_cmd", required=True, metavar="BENCHMARK")

    ledger = commands.add_parser("ledger", help="drive signed load at a cluster and measure finality")
    ledger.add_argument("--nodes", type=int, default=4, help="validator processes to start (default 4)")
    ledger.add_argument("--duration", type=float, default=20.0, help="seconds of load")
    ledger.add_argument("--rate", type=float, default=1000.0, help="offered transactions per second")
    ledger.add_argument("--senders", type=int, default=256, help="distinct signing keys")
    ledger.add_argument("--json", action="store_true", help="print one JSON object")
    ledger.add_argument(
        "--quick", action="store_true", help="one short run for the CPU-per-transaction figure (sets rate, duration)"
    )
    ledger.set_defaults(func=cmd_ledger)

    gas = commands.add_parser("gas", help="gas used per EHR-contract function (deterministic) and VM throughput")
    gas.add_argument("--json", action="store_true", help="print one JSON object")
    gas.add_argument("--calls", type=int, default=2_000, help="set_policy calls for the throughput run")
    gas.add_argument("--calibrate", action="store_true", help="ns per gas of every operation class vs a tight loop")
    gas.set_defaults(func=cmd_gas)

    contracts = commands.add_parser("contracts", help="set_policy transactions through POST /tx on a one-node cluster")
    contracts.add_argument("--count", type=int, default=4_000, help="transactions to send")
    contracts.add_argument("--senders", type=int, default=32, help="distinct signing keys (patients)")
    contracts.add_argument("--json", action="store_true", help="print one JSON object")
    contracts.set_defaults(func=cmd_contracts)


def cmd_ledger(args: argparse.Namespace) -> int:
    from bench.ledger import QUICK_DURATION_S, QUICK_RATE, run_ledger_bench

    rate, duration = (QUICK_RATE, QUICK_DURATION_S) if args.quick else (args.rate, args.duration)
    report = run_ledger_bench(args.nodes, duration, rate, args.senders)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:>18}: {value}")
    return 0


def cmd_gas(args: argparse.Namespace) -> int:
    if args.calibrate:
        from bench import vm_calibration

        return vm_calibration.main(_json_flag(args))
    from bench import gas

    return gas.main(["--calls", str(args.calls), *_json_flag(args)])


def cmd_contracts(args: argparse.Namespace) -> int:
    from bench import contract_calls

    return contract_calls.main(["--count", str(args.count), "--senders", str(args.senders), *_json_flag(args)])


def _json_flag(args: argparse.Namespace) -> list[str]:
    return ["--json"] if args.json else []


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m node.cli.bench bench ...`: the benchmarks without the rest of `ehrnet`."""
    from node.cli.dispatch import run_standalone

    return run_standalone(register, argv)


if __name__ == "__main__":
    raise SystemExit(main())
