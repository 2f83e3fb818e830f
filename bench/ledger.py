"""End-to-end ledger benchmark: the same run as `ehrnet bench ledger` (bench/ledger_body.py), at several rates.

    .venv/bin/python -m bench.ledger [--nodes 4] [--duration 20] [--rates 1000,2000,3000] [--senders 256] [--json]

Each rate starts a fresh local cluster of real node processes, offers signed `record` transactions over HTTP for
`--duration` seconds and reports committed tx/s, submit-to-final p50/p99 and `lost` (acknowledged, never final).
Issue 3's target on a 2-core machine: >= 2,000 committed tx/s sustained; p99 <= 2 s at 1,000 tx/s; lost = 0.
Node CPU seconds are printed too, because the machine is shared and the load generator runs on it as well.
"""

from __future__ import annotations

import argparse
import json

from bench.ledger_body import run_ledger_bench

COLUMNS = (
    "offered_tps",
    "committed_tps",
    "p50_final_s",
    "p99_final_s",
    "lost",
    "rejected",
    "final_heights",
    "node_cpu_ms_per_tx",
)


def main() -> None:
    parser = argparse.ArgumentParser(description="ledger throughput and finality on a local cluster")
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load per rate")
    parser.add_argument("--rates", default="1000,2000,3000", help="comma-separated offered tx/s")
    parser.add_argument("--senders", type=int, default=256, help="distinct signing keys")
    parser.add_argument("--json", action="store_true", help="one JSON report per line")
    args = parser.parse_args()
    for rate in (float(r) for r in args.rates.split(",")):
        report = run_ledger_bench(args.nodes, args.duration, rate, args.senders)
        if args.json:
            print(json.dumps(report), flush=True)
        else:
            print(f"rate {rate:>6.0f} tx/s: " + "  ".join(f"{c}={report.get(c)}" for c in COLUMNS), flush=True)


if __name__ == "__main__":
    main()
