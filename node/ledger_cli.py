"""`ehrnet tx ...` and `ehrnet bench ledger`: sign transactions, submit them to a node, follow them to finality."""

from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]


class NodeError(RuntimeError):
    """The node refused a request or could not be reached; the message says which and why."""


def call(url: str, method: str = "GET", body: Any = None, timeout: float = 10.0) -> Any:
    """JSON over HTTP to a node; a 4xx/5xx becomes NodeError carrying the node's own message."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error", exc.reason)
        except ValueError:
            message = exc.reason
        raise NodeError(f"{url}: {exc.code}: {message}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise NodeError(f"{url}: cannot reach the node ({exc})") from exc


def register(sub: SubParsers) -> None:
    tx = sub.add_parser("tx", help="sign and submit ledger transactions").add_subparsers(dest="tx_cmd", required=True)
    record = tx.add_parser("record", help="store a small value under a key in the sender's namespace")
    record.add_argument("--key", type=Path, required=True, help="the sender's key file (ehrnet keys new)")
    record.add_argument("--node", required=True, help="a node's HTTP URL, e.g. http://127.0.0.1:40331")
    record.add_argument("--no-wait", action="store_true", help="return once accepted, not once final")
    record.add_argument("record_key", metavar="KEY")
    record.add_argument("value", metavar="VALUE")
    record.set_defaults(func=cmd_record)

    bench = sub.add_parser("bench", help="benchmarks that start their own cluster").add_subparsers(
        dest="bench_cmd", required=True
    )
    ledger = bench.add_parser("ledger", help="drive signed load at a cluster and measure finality")
    ledger.add_argument("--nodes", type=int, default=4)
    ledger.add_argument("--duration", type=float, default=20.0, help="seconds of load")
    ledger.add_argument("--rate", type=float, default=1000.0, help="offered transactions per second")
    ledger.add_argument("--senders", type=int, default=256, help="distinct signing keys")
    ledger.add_argument("--json", action="store_true")
    ledger.set_defaults(func=cmd_bench_ledger)


def wait_final(node: str, tx_hash: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            status: dict[str, Any] = call(f"{node}/tx/{tx_hash}")
        except NodeError:
            status = {"status": "unknown"}
        if status.get("status") == "final":
            return status
        if time.monotonic() > deadline:
            raise NodeError(f"transaction {tx_hash} not final after {timeout:.0f} s (last: {status.get('status')})")
        time.sleep(0.05)


def cmd_record(args: argparse.Namespace) -> int:
    from consensus.keys import KeyFileError, SigningKey
    from consensus.tx import Tx
    from node.cli import CliError

    try:
        key = SigningKey.load(args.key)
    except KeyFileError as exc:
        raise CliError(f"--key: {exc}") from exc
    node = args.node.rstrip("/")
    try:
        chain_id = call(f"{node}/status")["chain_id"]
        nonce = call(f"{node}/accounts/{key.address.hex()}")["next_nonce"]
        tx = Tx.create(key, chain_id, "record", nonce, {"key": args.record_key.encode(), "value": args.value.encode()})
        answer = call(f"{node}/tx", "POST", {"tx": tx.raw.hex()})
        print(f"tx {answer['hash']} accepted")
        if not args.no_wait:
            final = wait_final(node, answer["hash"])
            print(f"final at height {final['height']}")
    except NodeError as exc:
        raise CliError(str(exc)) from exc
    return 0


def cmd_bench_ledger(args: argparse.Namespace) -> int:
    from node.ledger_bench import run_ledger_bench

    report = run_ledger_bench(args.nodes, args.duration, args.rate, args.senders)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:>18}: {value}")
    return 0
