"""`ehrnet contract deploy|call` (docs/API.md, "Contracts"); `ehrnet bench gas|contracts` is in node/cli/bench.py.

A deploy or a call is a signed transaction sent to a node (`POST /contracts`, `POST /tx`) and followed until its
receipt is final (`GET /receipts/<hash>`); `--view` evaluates a function on the node's final state instead,
without a transaction. Call arguments are typed by the contract's ABI (`GET /contracts/<name>/abi`): ints in
decimal, bytes in hex, bools as true/false, lists and dicts as JSON (consensus/vm/jsonvalues.py). Answers print
bytes in hex as well (the HTTP API writes them as DAG-JSON base64 objects), so a value printed by one call can be
passed to the next as it is.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.cli.args import node_url
from node.client import NodeClient

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

DEFAULT_GAS = 1_000_000


def register(sub: SubParsers) -> None:
    """Add `contract deploy|call`."""
    contract = sub.add_parser("contract", help="deploy and call contracts").add_subparsers(
        dest="contract_cmd", required=True
    )
    deploy = contract.add_parser("deploy", help="deploy a contract (admin key)")
    deploy.add_argument("file", type=Path, metavar="FILE", help="the contract source")
    deploy.add_argument("--args", default="[]", help="init() arguments as a JSON array (DAG-JSON for bytes)")
    deploy.add_argument("--name", default=None, help="register the contract under this well-known name")
    _common(deploy, key_required=True)
    deploy.set_defaults(func=cmd_deploy)

    call = contract.add_parser("call", help="call a contract function (a transaction, or --view)")
    call.add_argument("contract", metavar="NAME", help="contract name or 40-hex-character address")
    call.add_argument("function", metavar="FUNC", help="the function to call (see GET /contracts/NAME/abi)")
    call.add_argument("args", metavar="ARGS", nargs="*", help="arguments, typed by the ABI")
    call.add_argument("--view", action="store_true", help="evaluate read-only on the final state, no transaction")
    _common(call, key_required=False)
    call.set_defaults(func=cmd_call)


def _common(parser: argparse.ArgumentParser, *, key_required: bool) -> None:
    parser.add_argument("--key", type=Path, required=key_required, help="the sender's key file")
    parser.add_argument(
        "--node", type=node_url, required=True, help="a node's HTTP API, e.g. http://127.0.0.1:40331 (or HOST:PORT)"
    )
    parser.add_argument("--gas", type=int, default=DEFAULT_GAS, help="gas limit of the transaction")
    parser.add_argument("--no-wait", action="store_true", help="return once accepted, not once final")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the receipt")


# --- commands ------------------------------------------------------------------------------------------------


def _load_key(path: Path) -> Any:
    from node.cli.dispatch import CliError
    from primitives.keys import KeyFileError, SigningKey

    try:
        return SigningKey.load(path)
    except KeyFileError as exc:
        raise CliError(f"--key: {exc}") from exc


def _sign(client: NodeClient, key: Any, kind: str, body: dict[str, Any]) -> Any:
    """A transaction of `kind` signed with the sender's next nonce on `client`'s node."""
    from consensus.tx import Tx

    return Tx.create(key, client.chain_id(), kind, client.next_nonce(key.address.hex()), body)


def wait_receipt(client: NodeClient, tx_hash: str, timeout: float) -> dict[str, Any]:
    """The receipt (`GET /receipts/<hash>`) once the transaction is final; NodeTimeout after `timeout` seconds."""
    client.wait_final(tx_hash, timeout_s=timeout)
    return client.receipt(tx_hash)


def bytes_as_hex(doc: Any) -> Any:
    """A node's JSON answer with each DAG-JSON bytes object ({"/": {"bytes": base64}}) replaced by hex, the form
    the CLI takes bytes arguments in."""
    import base64

    if isinstance(doc, list):
        return [bytes_as_hex(item) for item in doc]
    if isinstance(doc, dict):
        inner = doc.get("/")
        if len(doc) == 1 and isinstance(inner, dict) and set(inner) == {"bytes"} and isinstance(inner["bytes"], str):
            text = inner["bytes"]
            return base64.b64decode(text + "=" * (-len(text) % 4)).hex()
        return {key: bytes_as_hex(value) for key, value in doc.items()}
    return doc


def _report(receipt: dict[str, Any]) -> int:
    print(json.dumps(bytes_as_hex(receipt), indent=2))
    return 0 if receipt.get("status") == "ok" else 1


def cmd_deploy(args: argparse.Namespace) -> int:
    from consensus.vm import VMError
    from consensus.vm.jsonvalues import from_json
    from node.cli.dispatch import CliError

    key = _load_key(args.key)
    try:
        source = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"FILE: cannot read {args.file}: {exc}") from exc
    try:
        init_args = from_json(json.loads(args.args))
    except (ValueError, VMError) as exc:
        raise CliError(f"--args: not a JSON array of contract values: {exc}") from exc
    if not isinstance(init_args, list):
        raise CliError("--args: a JSON array")
    body: dict[str, Any] = {"source": source, "args": init_args, "gas_limit": args.gas}
    if args.name is not None:
        body["name"] = args.name
    client = NodeClient.connect(args.node)
    answer = client.deploy(_sign(client, key, "deploy", body).raw)
    if args.no_wait:
        # Only the node's mempool has seen it: the chain may still reject the code when it executes it.
        print(
            f"deploy {answer['hash']} submitted, not yet final (its address if the chain accepts it: "
            f"{answer['address']}; check with: ehrnet tx get {answer['hash']})",
            file=sys.stderr,
        )
        return 0
    print(f"deploy {answer['hash']} submitted; waiting until it is final", file=sys.stderr)
    return _deploy_verdict(wait_receipt(client, answer["hash"], args.timeout))


def _deploy_verdict(receipt: dict[str, Any]) -> int:
    """The chain's verdict on a final deploy: the mempool accepting a deploy says nothing about its code, which
    is only validated and initialised when a block executes it; print the receipt and, on a rejection, why."""
    print(json.dumps(bytes_as_hex(receipt), indent=2))
    found = receipt.get("result")
    result: dict[str, Any] = found if isinstance(found, dict) else {}
    height = receipt.get("height")
    if receipt.get("status") == "ok" and result.get("vm_status") == "ok":
        print(f"deployed at height {height}; contract address {result.get('address')}", file=sys.stderr)
        return 0
    reason = receipt.get("error") or result.get("vm_status") or "no reason given"
    print(f"deploy rejected by the chain at height {height}: {reason}", file=sys.stderr)
    return 1


def cmd_call(args: argparse.Namespace) -> int:
    from consensus.vm import VMError
    from consensus.vm.jsonvalues import parse_args, to_json
    from node.cli.dispatch import CliError

    client = NodeClient.connect(args.node)
    abi = client.abi(args.contract)
    try:
        values = parse_args(abi, args.function, args.args)
    except VMError as exc:
        raise CliError(f"ARGS: {exc}") from exc
    key = _load_key(args.key) if args.key is not None else None
    if args.view:
        caller = key.public_key.hex() if key is not None else None
        answer = client.view(args.contract, args.function, to_json(values), caller)
        print(json.dumps(bytes_as_hex(answer), indent=2))
        return 0
    if key is None:
        raise CliError("--key: required unless --view")
    target: Any = bytes.fromhex(args.contract) if len(args.contract) == 40 else args.contract
    body = {"contract": target, "function": args.function, "args": values, "gas_limit": args.gas}
    tx_hash = client.submit(_sign(client, key, "call", body).raw)
    print(f"call {tx_hash} accepted", file=sys.stderr)
    if args.no_wait:
        return 0
    return _report(wait_receipt(client, tx_hash, args.timeout))


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m node.cli.contract contract ...`: these commands without the rest of `ehrnet`."""
    from node.cli.dispatch import run_standalone

    return run_standalone(register, argv)


if __name__ == "__main__":
    raise SystemExit(main())
