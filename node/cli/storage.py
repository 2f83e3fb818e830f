"""`ehrnet add | cat | pin | gc` (and `dag`, from node/cli/dag.py): talk to a node's HTTP API, streaming both ways.

`register(subparsers)` adds the commands to the node's CLI (node/cli/main.py); each sets `func` to a handler that
takes the parsed arguments and returns the exit code: 0 success, 1 the node refused (its JSON error message is
printed to stderr), 2 the node could not be reached or a local file could not be read (node errors map to codes in
node/cli/dispatch.py: `node_failure`). The commands go through the node client's standard-library transport in a
worker thread (node/client/stdlib.py): no aiohttp in the CLI, and the coroutines below stay usable from a test's
or a benchmark's event loop that serves the node itself.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from node.cli.args import node_url
from node.cli.dispatch import node_failure
from node.client import AsyncNodeClient, NodeError
from node.client.stdlib import ThreadedTransport

CHUNK = 256 << 10
NODE_HELP = "the node's HTTP API, e.g. http://127.0.0.1:8080 (HOST:PORT works too)"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add = subparsers.add_parser("add", help="store a file on a node; prints its CID")
    add.add_argument("file", type=Path, help="the file to store")
    add.add_argument("--node", type=node_url, required=True, help=NODE_HELP)
    add.add_argument(
        "--replication",
        type=int,
        help="nodes that should hold a copy (default: the node's, 2, so that one holder's crash loses nothing)",
    )
    add.add_argument("--no-pin", action="store_true", help="do not pin (garbage collection may reclaim it)")
    add.set_defaults(func=run_add)

    cat = subparsers.add_parser("cat", help="write a stored file's bytes to stdout")
    cat.add_argument("cid", help="the file's CID, as add printed it")
    cat.add_argument("--node", type=node_url, required=True, help=NODE_HELP + "; any node: it fetches from holders")
    cat.set_defaults(func=run_cat)

    pin = subparsers.add_parser("pin", help="manage a node's pins (operator token required)")
    actions = pin.add_subparsers(dest="action", required=True)
    for name, helptext in (("add", "pin a CID stored on the node"), ("rm", "unpin a CID")):
        action = actions.add_parser(name, help=helptext)
        action.add_argument("cid", help="the CID to pin or unpin")
        if name == "add":
            action.add_argument("--replication", type=int, help="nodes that should hold a copy (default 2)")
        _operator_args(action)
        action.set_defaults(func=run_pin)
    listing = actions.add_parser("ls", help="list pins")
    _operator_args(listing)
    listing.set_defaults(func=run_pin)

    gc = subparsers.add_parser("gc", help="reclaim unpinned blocks on a node (operator token required)")
    _operator_args(gc)
    gc.set_defaults(func=run_gc)


def _operator_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--node", type=node_url, required=True, help=NODE_HELP)
    parser.add_argument("--token-file", type=Path, required=True, help="the node's api.token")


def run_add(args: argparse.Namespace) -> int:
    return asyncio.run(add_file(args.node, args.file, args.replication, not args.no_pin))


def run_cat(args: argparse.Namespace) -> int:
    return asyncio.run(cat_file(args.node, args.cid, sys.stdout.buffer))


def run_pin(args: argparse.Namespace) -> int:
    token = _read_token(args.token_file)
    if token is None:
        return 2
    return asyncio.run(
        pin_command(args.node, token, args.action, getattr(args, "cid", None), getattr(args, "replication", None))
    )


def run_gc(args: argparse.Namespace) -> int:
    token = _read_token(args.token_file)
    return 2 if token is None else asyncio.run(gc_command(args.node, token))


def _read_token(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError as exc:
        print(f"cannot read token file: {exc}", file=sys.stderr)
        return None


# A node answers an upload once it has placed the replicas, which on a loaded machine can take minutes.
STORE_TIMEOUT_S = 300.0


def client_of(node: str, token: str | None = None) -> AsyncNodeClient:
    """The node client the store commands use: the standard library in a worker thread (no aiohttp)."""
    return AsyncNodeClient(ThreadedTransport(node, token, STORE_TIMEOUT_S))


def file_chunks(path: Path) -> Iterator[bytes]:
    """A file's bytes in chunks, read as the upload pulls them (the transport reads it in its worker thread)."""
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


async def add_file(
    node: str, path: Path, replication: int | None = None, pin: bool = True, out: IO[str] | None = None
) -> int:
    if not await asyncio.to_thread(path.is_file):
        print(f"{path}: not a readable file", file=sys.stderr)
        return 2
    try:
        body = await client_of(node).add(file_chunks(path), pin, replication)
    except NodeError as exc:
        return node_failure(exc)
    print(body["cid"], file=out or sys.stdout)
    warn_if_underreplicated(body)
    return 0


def warn_if_underreplicated(body: dict[str, Any]) -> None:
    holders, wanted = body.get("holders"), body.get("replication")
    if isinstance(holders, int) and isinstance(wanted, int) and holders < wanted:
        print(
            f"warning: {holders} of {wanted} copies confirmed (fewer storage nodes reachable, or they were slow); "
            "the node keeps placing the rest",
            file=sys.stderr,
        )


async def cat_file(node: str, cid: str, out: IO[bytes], car: bool = False) -> int:
    """Stream an object (or, with `car`, its whole DAG as a CAR v1) to `out`: exit code 0, or the node error's.
    On an error part of the bytes may have been written."""
    try:
        await client_of(node).cat(cid, out.write, car=car)
    except NodeError as exc:
        return node_failure(exc)
    out.flush()
    return 0


async def pin_command(
    node: str, token: str, action: str, cid: str | None, replication: int | None = None, out: IO[str] | None = None
) -> int:
    stream = out or sys.stdout
    client = client_of(node, token)
    try:
        if action == "ls":
            for pin in await client.pins():
                print(f"{pin['cid']} replication={pin['replication']}", file=stream)
            return 0
        assert cid is not None
        body = await (client.pin(cid, replication) if action == "add" else client.unpin(cid))
    except NodeError as exc:
        return node_failure(exc)
    print(body["cid"], file=stream)
    warn_if_underreplicated(body)
    return 0


async def gc_command(node: str, token: str, out: IO[str] | None = None) -> int:
    try:
        body = await client_of(node, token).gc()
    except NodeError as exc:
        return node_failure(exc)
    print(
        f"removed {body['removed_blocks']} blocks, freed {body['freed_bytes']} bytes, "
        f"returned {body.get('compacted_bytes', 0)} bytes of pack files to the disk",
        file=out or sys.stdout,
    )
    return 0
