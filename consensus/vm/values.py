"""The values a contract can hold, and size accounting over them.

A contract value is one of: int, bool, None, str, bytes, list, tuple, dict. Nothing else is reachable from
contract code: there are no host objects, functions or `ctx` as values (the validator rejects them), so every
deep operation below may assume these eight types and treats anything else as a VM bug surfaced as an error.

Lists and dicts are shared by reference as in Python, so a small program can build a structure whose *logical*
size is huge (`[[x] * 1000] * 1000`). Deep operations (comparison, str(), encoding) therefore first `weigh` the
value, counting every visit including repeated ones, and stop at `Limits.max_weight`.
"""

from __future__ import annotations

from typing import Any

from consensus import codec
from consensus.vm.errors import ContractError, LimitExceeded

SLOT_BYTES = 8  # memory charged per list/tuple slot (dict entries count two slots)

_NAMES: dict[type, str] = {
    int: "int",
    bool: "bool",
    type(None): "None",
    str: "str",
    bytes: "bytes",
    list: "list",
    tuple: "tuple",
    dict: "dict",
}


def type_name(value: Any) -> str:
    """The contract-visible type name of a value."""
    name = _NAMES.get(type(value))
    if name is None:
        raise ContractError(f"not a contract value: {type(value).__name__}")
    return name


def weigh(value: Any, budget: int) -> int:
    """Nodes a deep walk of `value` visits (strings count one per 32 characters); over `budget` is an error."""
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is list or kind is tuple:
            total += 1 + len(item)
            if total <= budget:
                stack.extend(item)
        elif kind is dict:
            total += 1 + 2 * len(item)
            if total <= budget:
                stack.extend(item.keys())
                stack.extend(item.values())
        elif kind is str or kind is bytes:
            total += 1 + len(item) // 32
        elif kind is int:
            total += 1 + item.bit_length() // 64
        elif item is None or kind is bool:
            total += 1
        else:
            raise ContractError(f"not a contract value: {kind.__name__}")
        if total > budget:
            raise LimitExceeded(f"value too large for a deep operation (over {budget} nodes)")
    return total


def shallow_size(value: Any) -> int:
    """Bytes a freshly built value of this shape occupies, for memory accounting."""
    kind = type(value)
    if kind is str or kind is bytes:
        return len(value)
    if kind is list or kind is tuple:
        return SLOT_BYTES * len(value)
    if kind is dict:
        return 2 * SLOT_BYTES * len(value)
    return SLOT_BYTES


def encode_value(value: Any, budget: int, max_bytes: int, what: str) -> bytes:
    """Canonical DAG-CBOR of a contract value, bounded in work and size (storage, events, call boundaries)."""
    weigh(value, budget)
    try:
        data = codec.encode(value)
    except codec.CodecError as exc:
        raise ContractError(f"{what} cannot be encoded: {exc}") from None
    if len(data) > max_bytes:
        raise LimitExceeded(f"{what} is {len(data)} bytes, above the {max_bytes}-byte limit")
    return data


def decode_value(data: bytes, what: str) -> Any:
    try:
        return codec.decode(data)
    except codec.CodecError as exc:
        raise ContractError(f"{what} is not canonical DAG-CBOR: {exc}") from None


# ABI argument types: a public function's parameters must be annotated with one of these.
ABI_TYPES = ("int", "str", "bytes", "bool", "list", "dict")


def fits_abi_type(value: Any, annotation: str) -> bool:
    """Whether a decoded call argument matches its parameter's ABI type (bool is not an int here)."""
    return _NAMES.get(type(value)) == annotation
