"""`ehrnet dag export | import`: whole DAGs in and out of a node as CAR v1 files (IPFS's archive format).

`export` streams `GET /objects/{cid}?format=car` to stdout or a file, so `ipfs dag import`, `@ipld/car` or any
CAR reader can verify and archive an ehrnet object; `import` streams a CAR to `POST /dag/import`, where every
block is hashed against its CID and the roots are pinned. Exit codes as the other store commands
(node/cli/storage.py): 0 success, 1 the node refused (its message on stderr), 2 unreachable or a local file error.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import IO

from node.cli.args import node_url
from node.cli.dispatch import node_failure
from node.cli.storage import NODE_HELP, cat_file, client_of, file_chunks, warn_if_underreplicated
from node.client import NodeError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dag = subparsers.add_parser("dag", help="move whole DAGs in and out of a node as CAR v1 files")
    actions = dag.add_subparsers(dest="dag_action", required=True)
    export = actions.add_parser("export", help="write an object's DAG as a CAR v1 (stdout unless --out)")
    export.add_argument("cid", help="the object's root CID")
    export.add_argument("--node", type=node_url, required=True, help=NODE_HELP)
    export.add_argument("--out", type=Path, help="write the CAR to this file instead of stdout")
    export.set_defaults(func=run_export)
    imported = actions.add_parser("import", help="store and pin the DAGs of a CAR v1 file; prints the root CIDs")
    imported.add_argument("file", type=Path, help="the CAR v1 file")
    imported.add_argument("--node", type=node_url, required=True, help=NODE_HELP)
    imported.add_argument("--replication", type=int, help="nodes that should hold each root (default: the node's, 2)")
    imported.set_defaults(func=run_import)


def run_export(args: argparse.Namespace) -> int:
    if args.out is None:
        return asyncio.run(export_car(args.node, args.cid, sys.stdout.buffer))
    try:
        with args.out.open("wb") as sink:
            return asyncio.run(export_car(args.node, args.cid, sink))
    except OSError as exc:
        print(f"--out: cannot write {args.out}: {exc}", file=sys.stderr)
        return 2


def run_import(args: argparse.Namespace) -> int:
    return asyncio.run(import_car(args.node, args.file, args.replication))


async def export_car(node: str, cid: str, out: IO[bytes]) -> int:
    """The DAG under `cid` as a CAR v1 into `out` (on an error, the CAR written is incomplete)."""
    return await cat_file(node, cid, out, car=True)


async def import_car(node: str, path: Path, replication: int | None = None, out: IO[str] | None = None) -> int:
    if not await asyncio.to_thread(path.is_file):
        print(f"{path}: not a readable file", file=sys.stderr)
        return 2
    try:
        body = await client_of(node).dag_import(file_chunks(path), replication)
    except NodeError as exc:
        return node_failure(exc)
    for root in body["roots"]:
        print(root, file=out or sys.stdout)
    warn_if_underreplicated(body)
    return 0
