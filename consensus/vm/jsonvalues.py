"""Contract values to and from JSON (for HTTP bodies and the CLI), following the DAG-JSON convention for bytes.

DAG-JSON (IPLD) writes bytes as {"/": {"bytes": "<base64, no padding>"}}, so a receipt or call argument
round-trips through JSON losslessly and the same mapping works for any IPLD tool. (The one value that cannot
round-trip is a map that is itself exactly {"/": {"bytes": ...}}: it reads back as bytes, as in DAG-JSON.)

CLI arguments are parsed against the function's ABI type: ints in decimal, bytes in hex (with or without 0x),
bools as true/false, lists and dicts as JSON.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any

from consensus.vm.errors import ArgumentError
from primitives import codec


def to_json(value: codec.Value) -> Any:
    """A JSON-ready form of a contract value (tuples become lists, bytes DAG-JSON byte objects)."""
    if isinstance(value, bytes):
        return {"/": {"bytes": base64.b64encode(value).decode("ascii").rstrip("=")}}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    return value


def from_json(obj: Any, depth: int = 0) -> codec.Value:
    """The contract value a JSON document (parsed) denotes; `ArgumentError` for floats or malformed bytes."""
    if depth > codec.MAX_DEPTH:
        raise ArgumentError(f"JSON nested deeper than {codec.MAX_DEPTH}")
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        raise ArgumentError("numbers must be integers")
    if isinstance(obj, list):
        return [from_json(item, depth + 1) for item in obj]
    if isinstance(obj, dict):
        inner = obj.get("/")
        if len(obj) == 1 and isinstance(inner, dict) and set(inner) == {"bytes"}:
            text = inner["bytes"]
            if not isinstance(text, str):
                raise ArgumentError("DAG-JSON bytes must be a base64 string")
            try:
                return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
            except (binascii.Error, ValueError):
                raise ArgumentError("DAG-JSON bytes are not valid base64") from None
        return {str(key): from_json(item, depth + 1) for key, item in obj.items()}
    raise ArgumentError(f"unsupported JSON value {type(obj).__name__}")


def _parse_one(kind: str, text: str, name: str) -> codec.Value:
    try:
        if kind == "int":
            return int(text, 10)
        if kind == "str" or kind == "any":
            return text
        if kind == "bytes":
            return bytes.fromhex(text.removeprefix("0x"))
        if kind == "bool":
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError(text)
            return text.lower() in ("true", "1")
        value = from_json(json.loads(text))
    except ValueError as exc:  # includes json.JSONDecodeError and ArgumentError
        raise ArgumentError(f"argument {name!r} is not a valid {kind}: {exc}") from None
    if (kind == "list" and not isinstance(value, list)) or (kind == "dict" and not isinstance(value, dict)):
        raise ArgumentError(f"argument {name!r} must be a JSON {'array' if kind == 'list' else 'object'}")
    return value


def parse_args(abi: Mapping[str, Any], func: str, texts: Sequence[str]) -> list[codec.Value]:
    """Turn command-line strings into call arguments using the ABI from `VM.abi` (or `Program.abi`)."""
    for entry in abi.get("functions", []):
        if entry["name"] == func:
            params = entry["params"]
            break
    else:
        raise ArgumentError(f"the contract has no public function {func!r}")
    if len(texts) != len(params):
        raise ArgumentError(f"{func}() takes {len(params)} arguments, got {len(texts)}")
    return [_parse_one(p["type"], text, p["name"]) for p, text in zip(params, texts, strict=True)]
