"""`ehrnet light ...`: a light client's identity, chain following and verified state reads.

Everything heavy is imported inside the handlers (libp2p only when a node is given by multiaddr), so a light
command starts quickly and the process stays small.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.cli.args import node_url_or_multiaddr

if TYPE_CHECKING:
    from node.light.follower import Follower

    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]


def register(sub: SubParsers) -> None:
    light = sub.add_parser("light", help="light client: verified chain reads, my records, sharing, offloading")
    cmds = light.add_subparsers(dest="light_cmd", required=True)

    keygen = cmds.add_parser("keygen", help="create a light client identity (Ed25519 + X25519 [+ P-256])")
    keygen.add_argument("--out", type=Path, required=True, help="directory for the key files")
    keygen.add_argument("--p256", action="store_true", help="also create a P-256 device key that endorses both")
    keygen.set_defaults(func=cmd_keygen)

    sync = cmds.add_parser("sync", help="follow the chain to the head, verifying every header")
    _add_follow_args(sync)
    sync.set_defaults(func=cmd_sync)

    get = cmds.add_parser("get-state", help="read state keys, each checked against a verified header")
    _add_follow_args(get)
    get.add_argument("--key", dest="keys", action="append", required=True, metavar="HEX", help="state key (hex)")
    get.set_defaults(func=cmd_get_state)

    from node.light import offload_cli, sharing_cli

    sharing_cli.register(cmds)
    offload_cli.register(cmds, sharing_cli.session_args)  # `light offload ...` builds on the sharing commands


def _add_follow_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="the network's resolved config (network.toml)")
    parser.add_argument(
        "--node",
        dest="nodes",
        action="append",
        default=[],
        type=node_url_or_multiaddr,
        metavar="URL|MULTIADDR",
        help="a full node to ask (repeatable; default: every node of the config)",
    )
    parser.add_argument("--http", action="store_true", help="with no --node: use the nodes' HTTP APIs, not libp2p")
    parser.add_argument("--data-dir", type=Path, required=True, help="where the client keeps its trusted head")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default 10)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _fail(message: str, code: int) -> int:
    print(f"ehrnet: error: {message}", file=sys.stderr)
    return code


def cmd_keygen(args: argparse.Namespace) -> int:
    from node.light import identity
    from node.light.errors import LightError

    try:
        ident = identity.generate(args.out, p256=args.p256)
    except LightError as exc:
        return _fail(str(exc), 2)
    for name, value in ident.describe().items():
        print(f"{name:<16} {value}")
    # The contract must hold this identity's box key, which is what records are wrapped for (docs/LIGHT.md).
    public = ident.describe()
    print(f"register with:   ehrnet admin add-user --pk {public['public_key']} --enc-pk {public['box_public_key']} ...")
    return 0


def _figures(follower: Follower) -> dict[str, Any]:
    f = follower.figures
    rate = f.headers_verified / f.verify_seconds if f.verify_seconds > 0 else None
    header = follower.header
    return {
        "height": follower.height,
        "block_hash": header.hash.hex(),
        "state_root": header.state_root.hex(),
        "from_height": f.start_height,
        "headers_verified": f.headers_verified,
        "signatures_verified": f.signatures_verified,
        "validator_set_changes": f.set_changes,
        "proofs_verified": f.proofs_verified,
        "verify_seconds": round(f.verify_seconds, 4),
        "headers_per_second": None if rate is None else round(rate),
        "total_seconds": round(f.total_seconds, 3),
        "dropped_nodes": f.dropped,
    }


def _print_figures(doc: dict[str, Any]) -> None:
    for name, value in doc.items():
        if name == "dropped_nodes":
            value = "none" if not value else "; ".join(f"{k}: {v}" for k, v in value.items())
        print(f"{name:<22} {value}")


async def _run(args: argparse.Namespace, keys: list[bytes]) -> dict[str, Any]:
    from node.cluster.config import load_network
    from node.light.client import default_nodes, genesis_from_network, open_follower

    network = load_network(args.config)
    genesis = genesis_from_network(network)
    nodes = args.nodes or default_nodes(network, http=args.http)
    async with open_follower(genesis, nodes, args.data_dir, args.timeout) as follower:
        await follower.sync()
        reads = []
        for key in keys:
            got = await follower.get_state(key)
            reads.append(
                {
                    "key": key.hex(),
                    "value": None if got.value is None else got.value.hex(),
                    "height": got.height,
                    "node": got.source,
                }
            )
        doc = _figures(follower)
        if keys:
            doc["reads"] = reads
        return doc


def _follow(args: argparse.Namespace, keys: list[bytes]) -> int:
    from node.cluster.config import ConfigError
    from node.light.errors import LightError, NoSourceError

    try:
        doc = asyncio.run(_run(args, keys))
    except NoSourceError as exc:
        return _fail(str(exc), 1)
    except (LightError, ConfigError) as exc:
        return _fail(str(exc), 2)
    if args.json:
        print(json.dumps(doc))
        return 0
    reads = doc.pop("reads", [])
    _print_figures(doc)
    for read in reads:
        shown = "absent" if read["value"] is None else read["value"]
        print(f"{read['key']} = {shown}  (proof verified at height {read['height']}, from {read['node']})")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    return _follow(args, [])


def cmd_get_state(args: argparse.Namespace) -> int:
    keys: list[bytes] = []
    for text in args.keys:
        try:
            keys.append(bytes.fromhex(text))
        except ValueError:
            return _fail(f"--key {text!r}: not hex", 2)
    return _follow(args, keys)


def main(argv: list[str] | None = None) -> int:
    """`python -m node.light.cli light ...`: the light commands without the rest of `ehrnet` (a device install)."""
    from node.cli.dispatch import run_standalone

    return run_standalone(register, argv)


if __name__ == "__main__":
    sys.exit(main())
