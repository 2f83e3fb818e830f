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

import cbor2

from consensus.vm.errors import ContractError, LimitExceeded
from primitives import codec

SLOT_BYTES = 8  # memory charged per list/tuple slot (dict entries count two slots)
MAX_DEPTH = codec.MAX_DEPTH  # deepest nesting of lists, tuples and dicts a deep operation accepts

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
    """Nodes a deep walk of `value` visits (strings count one per 32 characters); over `budget` is an error.

    Nesting is capped at `MAX_DEPTH` too: the host's own deep operations (repr, ==, hash) recurse in C, and a
    value nested deeper than the host allows would fail or not depending on the node's stack — a fork."""
    total = 0
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is list or kind is tuple:
            total += 1 + len(item)
            if total <= budget:
                if depth >= MAX_DEPTH:
                    raise LimitExceeded(f"value nested deeper than {MAX_DEPTH}")
                stack.extend((x, depth + 1) for x in item)
        elif kind is dict:
            total += 1 + 2 * len(item)
            if total <= budget:
                if depth >= MAX_DEPTH:
                    raise LimitExceeded(f"value nested deeper than {MAX_DEPTH}")
                stack.extend((x, depth + 1) for x in item)
                stack.extend((x, depth + 1) for x in item.values())
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


def _check_encodable(value: Any, budget: int, what: str) -> None:
    """`weigh` plus the codec's value rules (64-bit ints, text map keys, bounded depth) in one bounded walk, so
    the encoder below never meets an aliased giant or a value `codec.encode` would refuse."""
    total = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if depth > codec.MAX_DEPTH:
            raise ContractError(f"{what} cannot be encoded: nesting deeper than {codec.MAX_DEPTH}")
        if kind is list or kind is tuple:
            total += 1 + len(item)
            if total <= budget:
                stack.extend((x, depth + 1) for x in item)
        elif kind is dict:
            total += 1 + 2 * len(item)
            if total <= budget:
                for key, x in item.items():
                    if type(key) is not str:
                        raise ContractError(f"{what} cannot be encoded: map keys must be str")
                    stack.append((x, depth + 1))
        elif kind is str or kind is bytes:
            total += 1 + len(item) // 32
        elif kind is int:
            total += 1
            if not codec.INT_MIN <= item <= codec.INT_MAX:
                raise ContractError(f"{what} cannot be encoded: integer outside the 64-bit range")
        elif item is None or kind is bool:
            total += 1
        else:
            raise ContractError(f"not a contract value: {kind.__name__}")
        if total > budget:
            raise LimitExceeded(f"{what} too large to encode (over {budget} nodes)")


def encode_value(value: Any, budget: int, max_bytes: int, what: str) -> bytes:
    """Canonical DAG-CBOR of a contract value, bounded in work and size (storage, events, call boundaries).

    Byte-identical to `codec.encode` (the same canonical cbor2 encoder) after an equivalent, bounded check."""
    _check_encodable(value, budget, what)
    data = cbor2.dumps(value, canonical=True)
    if len(data) > max_bytes:
        raise LimitExceeded(f"{what} is {len(data)} bytes, above the {max_bytes}-byte limit")
    return data


def decode_value(data: bytes, what: str) -> Any:
    """Decode a value the VM itself encoded (storage). Not `codec.decode`'s strict re-encoding check: the bytes
    are covered by the state root, and equal bytes decode to equal values on every node; only the value types
    are checked, so a corrupt store surfaces as a contract error, not a host object."""
    try:
        value = cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, TypeError, RecursionError):
        raise ContractError(f"{what} is not valid CBOR") from None
    _check_encodable(value, 4 * len(data) + 8, what)  # decoded values share nothing: weight ≤ 2 per byte
    return value


# ABI argument types: a public function's parameters must be annotated with one of these.
ABI_TYPES = ("int", "str", "bytes", "bool", "list", "dict")


def fits_abi_type(value: Any, annotation: str) -> bool:
    """Whether a decoded call argument matches its parameter's ABI type (bool is not an int here)."""
    return _NAMES.get(type(value)) == annotation
