"""The `ehrnet` command line.

Subsystems add their own commands through a `register(subparsers)` function in their `cli` module; handlers
return an exit code. Heavy imports (numpy, scipy, libp2p) happen inside handlers so the CLI starts fast and a
light client stays small.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from node import __version__
from node.cli.args import HintingParser
from node.cli.dispatch import CliError, dispatch, run_standalone

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="cluster data directory (default: $EHRNET_DATA_DIR or ~/.ehrnet/cluster)",
    )


def _register_node(sub: SubParsers) -> None:
    node = sub.add_parser("node", help="run a full peer").add_subparsers(dest="node_cmd", required=True)
    run = node.add_parser("run", help="run one node in the foreground")
    run.add_argument("--config", type=Path, required=True, help="resolved network config (network.toml)")
    run.add_argument("--name", required=True, help="which node of the config to run")
    run.add_argument("--data-dir", type=Path, default=None, help="base data dir (default: the config's directory)")
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"], help="default info")
    run.add_argument("--log-file", type=Path, default=None, help="log to this file instead of stderr")
    run.add_argument(
        "--fault-control",
        action="store_true",
        help="serve the operator-only /admin/faults routes (fault injection; also EHRNET_FAULT_CONTROL=1)",
    )
    run.add_argument(
        "--unsafe-byzantine",
        metavar="MODE",
        default=None,
        help="TESTING ONLY: misbehave as a byzantine validator "
        "(equivocate, invalid-block, include-unallowlisted, malformed)",
    )
    run.add_argument(
        "--journal",
        action="store_true",
        help="journal every consensus input to DATA_DIR/consensus.journal for `ehrnet ledger replay` "
        "(also EHRNET_CONSENSUS_JOURNAL=1)",
    )
    run.set_defaults(func=_cmd_node_run)


def _cmd_node_run(args: argparse.Namespace) -> int:
    from node.faults.options import FaultOptions
    from node.runner import run_node

    if args.journal:  # the ledger service reads the switch where it builds the machine (consensus/input_journal.py)
        from consensus.input_journal import ENABLE_ENV

        os.environ[ENABLE_ENV] = "1"
    faults = FaultOptions.resolve(args.fault_control, args.unsafe_byzantine)
    return run_node(args.config, args.name, args.data_dir, args.log_level, args.log_file, faults)


def _register_cluster(sub: SubParsers) -> None:
    from node.cli import cluster as cluster_cli

    cluster_cli.register(sub, _add_data_dir)


def _register_keys(sub: SubParsers) -> None:
    keys = sub.add_parser("keys", help="signing keys").add_subparsers(dest="keys_cmd", required=True)
    new = keys.add_parser("new", help="create an Ed25519 key file")
    new.add_argument("--out", type=Path, required=True, help="where to write the key (refuses to overwrite)")
    new.set_defaults(func=_cmd_keys_new)


def _cmd_keys_new(args: argparse.Namespace) -> int:
    from primitives.keys import SigningKey

    out: Path = args.out
    if out.exists():
        raise CliError(f"--out: {out} exists; refusing to overwrite a key")
    key = SigningKey.generate()
    key.save(out)
    print(f"public_key {key.public_key.hex()}")
    print(f"address    {key.address.hex()}")
    return 0


def _register_ledger(sub: SubParsers) -> None:
    from node.cli import ledger as ledger_cli

    ledger_cli.register(sub)


def _register_ledger_replay(sub: SubParsers) -> None:
    from node.cli import ledger_replay

    ledger_replay.register(sub)


def _register_contract(sub: SubParsers) -> None:
    from node.cli import contract as contract_cli

    contract_cli.register(sub)


def _register_bench(sub: SubParsers) -> None:
    from node.cli import bench as bench_cli

    bench_cli.register(sub)


def _register_offload(sub: SubParsers) -> None:
    from offload import cli as offload_cli

    offload_cli.register(sub)


def _register_storage(sub: SubParsers) -> None:
    from node.cli import dag as dag_cli
    from node.cli import storage as storage_cli

    storage_cli.register(sub)
    dag_cli.register(sub)  # `ehrnet dag export | import` (CAR v1) builds on the storage commands' helpers


def _register_light(sub: SubParsers) -> None:
    from node.light import cli as light_cli

    light_cli.register(sub)


def _register_admin(sub: SubParsers) -> None:
    from node.cli import admin as admin_cli

    admin_cli.register(sub)


def _register_chaos(sub: SubParsers) -> None:
    from node.chaos import cli as chaos_cli

    chaos_cli.register(sub)


def _register_demo(sub: SubParsers) -> None:
    from node.demo import run as demo

    demo.register(sub)


def build_parser() -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = HintingParser(  # its subcommands' parsers are HintingParsers too
        prog="ehrnet",
        description="ehrnet: a peer-to-peer network for smart healthcare (offloading and EHR sharing).",
    )
    parser.add_argument("--version", action="version", version=f"ehrnet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    registrars: list[Callable[[SubParsers], None]] = [
        _register_node,
        _register_cluster,
        _register_keys,
        _register_ledger,
        _register_ledger_replay,
        _register_contract,
        _register_bench,
        _register_offload,
        _register_storage,
        _register_light,
        _register_admin,
        _register_demo,
        _register_chaos,
    ]
    for register in registrars:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:2] == ["node", "run"]:
        # A node's start-up is mostly imports, and on a busy machine every module counts: a node parses its
        # arguments without importing the other command groups (cluster, light, admin, demo, ...).
        return run_standalone(_register_node, args)
    return dispatch(build_parser(), args)


if __name__ == "__main__":
    sys.exit(main())
