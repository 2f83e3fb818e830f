"""`ehrnet tx record|get` and `ehrnet state get`: sign transactions, submit them to a node, follow them to
finality, and read back what they stored. (`ehrnet bench ledger` is in node/cli/bench.py.)"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from node.cli.args import node_url
from node.client import NodeClient, NodeRefused

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

NODE_HELP = "a node's HTTP API, e.g. http://127.0.0.1:40331 (HOST:PORT works too)"


def register(sub: SubParsers) -> None:
    tx = sub.add_parser("tx", help="sign and submit ledger transactions").add_subparsers(dest="tx_cmd", required=True)
    record = tx.add_parser(
        "record", help="store a small value under a name in the sender's namespace (read it back: state get)"
    )
    # --key is the signing key file, as in every other command; the record's own key is the positional NAME.
    record.add_argument(
        "--key", "--key-file", dest="key_file", metavar="FILE", type=Path, required=True,
        help="the sender's signing key file (ehrnet keys new)",
    )  # fmt: skip
    record.add_argument("--node", type=node_url, required=True, help=NODE_HELP)
    record.add_argument("--no-wait", action="store_true", help="return once accepted, not once final")
    record.add_argument("name", metavar="NAME", help="the record's name in the sender's namespace (UTF-8)")
    record.add_argument("value", metavar="VALUE", help="the value to store (UTF-8)")
    record.set_defaults(func=cmd_record)

    get = tx.add_parser("get", help="a transaction's status; once final, its height, body and receipt")
    get.add_argument("hash", metavar="HASH", help="the transaction hash (64 hex characters) that tx record printed")
    get.add_argument("--node", type=node_url, required=True, help=NODE_HELP)
    get.set_defaults(func=cmd_tx_get)

    state = sub.add_parser("state", help="read the ledger's state").add_subparsers(dest="state_cmd", required=True)
    read = state.add_parser("get", help="read back a record stored with tx record (as the node reports it)")
    read.add_argument("name", metavar="NAME", help="the record's name")
    owner = read.add_mutually_exclusive_group(required=True)
    owner.add_argument("--owner", metavar="ADDRESS", help="the owner's address (40 hex characters, as keys new prints)")
    owner.add_argument(
        "--key", "--key-file", dest="key_file", metavar="FILE", type=Path, help="the owner's key file (its address)"
    )
    read.add_argument("--node", type=node_url, required=True, help=NODE_HELP)
    read.add_argument("--json", action="store_true", help="print one JSON object (value in hex and as text)")
    read.set_defaults(func=cmd_state_get)


def cmd_record(args: argparse.Namespace) -> int:
    from consensus.tx import Tx
    from node.cli.dispatch import CliError
    from primitives.keys import KeyFileError, SigningKey

    try:
        key = SigningKey.load(args.key_file)
    except KeyFileError as exc:
        raise CliError(f"--key: {exc}") from exc
    client = NodeClient.connect(args.node)
    nonce = client.next_nonce(key.address.hex())
    tx = Tx.create(key, client.chain_id(), "record", nonce, {"key": args.name.encode(), "value": args.value.encode()})
    tx_hash = client.submit(tx.raw)
    print(f"tx {tx_hash} accepted")
    if not args.no_wait:
        final = client.wait_final(tx_hash, timeout_s=30.0)
        print(f"final at height {final['height']}")
    return 0


def cmd_tx_get(args: argparse.Namespace) -> int:
    from node.cli.dispatch import CliError

    tx_hash = args.hash.strip().lower().removeprefix("0x")
    if len(tx_hash) != 64 or not all(c in "0123456789abcdef" for c in tx_hash):
        raise CliError(f"HASH {args.hash!r}: expected 64 hex characters")
    client = NodeClient.connect(args.node)
    try:
        doc = client.tx(tx_hash)
    except NodeRefused as exc:
        if exc.status != 404:
            raise
        print(f"ehrnet: error: {tx_hash}: neither pending nor final on {args.node}", file=sys.stderr)
        return 1
    if doc.get("status") == "final":
        tx = client.block(int(doc["height"]))["txs"][doc["index"]]
        doc["tx"] = tx
        if tx.get("kind") == "record":
            body = tx.get("body", {})
            doc["record"] = {"name": _text(body.get("key")), "value": _text(body.get("value"))}
    print(json.dumps(doc, indent=2))
    return 0


def cmd_state_get(args: argparse.Namespace) -> int:
    """A record's value as the node reports it at its head; `ehrnet light get-state --key STATE_KEY` reads the same
    key with a proof checked against a verified header."""
    from consensus.state import record_key
    from node.cli.dispatch import CliError
    from primitives.keys import KeyFileError, SigningKey

    if args.key_file is not None:
        try:
            owner = SigningKey.load(args.key_file).address
        except KeyFileError as exc:
            raise CliError(f"--key: {exc}") from exc
    else:
        try:
            owner = bytes.fromhex(args.owner.removeprefix("0x"))
        except ValueError:
            owner = b""
        if len(owner) != 20:
            raise CliError(f"--owner {args.owner!r}: expected a 40-hex-character address")
    state_key = record_key(owner, args.name.encode())
    answer = NodeClient.connect(args.node).light("proof", {"key": state_key.hex()})
    value = None if answer.get("value") is None else bytes.fromhex(answer["value"])
    if args.json:
        doc = {
            "owner": owner.hex(),
            "name": args.name,
            "state_key": state_key.hex(),
            "height": answer.get("height"),
            "value": None if value is None else value.hex(),
            "text": None if value is None else _text(value.hex()),
        }
        print(json.dumps(doc))
    elif value is not None:
        print(_text(value.hex()))
    if value is None:
        print(f"ehrnet: error: {owner.hex()} has no record named {args.name!r} (height {answer.get('height')})",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


def _text(hex_value: object) -> str | None:
    """A record's bytes (hex in the node's JSON) as UTF-8 text, or as hex when they are not text."""
    if not isinstance(hex_value, str):
        return None
    raw = bytes.fromhex(hex_value)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "0x" + hex_value
