"""The builtin functions a contract may call, each charged and bounded before it does size-dependent work.

Every builtin takes the transaction's `Meter` and its evaluated positional arguments. Results that are new
containers are plain lists (range, reversed, enumerate, zip, dict.keys()…), never host iterators or views, so a
contract cannot observe anything but contract values.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from consensus.vm.errors import ContractError, LimitExceeded, Revert
from consensus.vm.gas import Meter
from consensus.vm.values import SLOT_BYTES, type_name
from primitives.keys import address_of

Builtin = Callable[[Meter, list[Any]], Any]

_SEQUENCES = (list, tuple, str, bytes)


def arity(name: str, args: list[Any], low: int, high: int) -> None:
    if not low <= len(args) <= high:
        expected = str(low) if low == high else f"{low} to {high}"
        raise ContractError(f"{name}() takes {expected} arguments, got {len(args)}")


def want(name: str, value: Any, *kinds: type) -> None:
    if type(value) not in kinds:
        expected = " or ".join(k.__name__ if k is not type(None) else "None" for k in kinds)
        raise ContractError(f"{name}() expects {expected}, got {type_name(value)}")


def new_container(meter: Meter, items: list[Any]) -> list[Any]:
    if len(items) > meter.limits.max_container_len:
        raise LimitExceeded(f"more than {meter.limits.max_container_len} items")
    meter.alloc(SLOT_BYTES * len(items))
    return items


def check_text(meter: Meter, length: int) -> None:
    """Refuse a str/bytes result before building it if it would exceed the bound; otherwise charge for it."""
    if length > meter.limits.max_str_len:
        raise LimitExceeded(f"string longer than {meter.limits.max_str_len}")
    meter.alloc(length)


def check_int(meter: Meter, value: int) -> int:
    if value.bit_length() > meter.limits.max_int_bits:
        raise LimitExceeded(f"integer wider than {meter.limits.max_int_bits} bits")
    return value


def items_of(meter: Meter, value: Any, what: str) -> list[Any]:
    """The items a `for` loop or a builtin iterates over, as a list (a dict gives its keys, a snapshot)."""
    kind = type(value)
    if kind is list:
        return value  # type: ignore[no-any-return]
    if kind is tuple or kind is dict or kind is str or kind is bytes:
        meter.alloc(SLOT_BYTES * len(value))
        return list(value)
    raise ContractError(f"{what}: {type_name(value)} is not iterable")


def ordered(meter: Meter, values: list[Any], what: str) -> list[Any]:
    """`sorted` with the VM's rules: one comparable type throughout, cost n·log n by weight."""
    weight = meter.walk(values)
    meter.charge_size(weight * max(1, len(values).bit_length()), "sort")
    kinds = {int if type(v) is bool else type(v) for v in values}
    if len(kinds) > 1 or kinds & {dict, type(None)}:
        raise ContractError(f"{what}: values are not mutually comparable")
    try:
        return sorted(values)
    except TypeError:
        raise ContractError(f"{what}: values are not mutually comparable") from None


def to_str(meter: Meter, value: Any) -> str:
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    meter.walk(value)
    text = str(value)
    check_text(meter, len(text))
    return text


def _len(meter: Meter, args: list[Any]) -> int:
    arity("len", args, 1, 1)
    want("len", args[0], list, tuple, dict, str, bytes)
    return len(args[0])


def _range(meter: Meter, args: list[Any]) -> list[int]:
    arity("range", args, 1, 3)
    for arg in args:
        want("range", arg, int)
    if len(args) == 3 and args[2] == 0:
        raise ContractError("range() step must not be zero")
    span = range(*args)
    if len(span) > meter.limits.max_container_len:
        raise LimitExceeded(f"range() of more than {meter.limits.max_container_len} items")
    return new_container(meter, list(span))


def _extreme(pick: Callable[[list[Any]], Any], name: str) -> Builtin:
    def run(meter: Meter, args: list[Any]) -> Any:
        if not args:
            raise ContractError(f"{name}() needs arguments")
        values = items_of(meter, args[0], name) if len(args) == 1 else args
        if not values:
            raise ContractError(f"{name}() of an empty sequence")
        return pick(ordered(meter, list(values), name))

    return run


def _abs(meter: Meter, args: list[Any]) -> int:
    arity("abs", args, 1, 1)
    want("abs", args[0], int, bool)
    return int(abs(args[0]))


def _str(meter: Meter, args: list[Any]) -> str:
    arity("str", args, 0, 1)
    return to_str(meter, args[0]) if args else ""


def _int(meter: Meter, args: list[Any]) -> int:
    arity("int", args, 0, 2)
    if not args:
        return 0
    value = args[0]
    if len(args) == 1 and type(value) in (int, bool):
        return int(value)
    want("int", value, str)
    base = args[1] if len(args) == 2 else 10
    if base not in (2, 8, 10, 16) or type(base) is not int:
        raise ContractError("int() base must be 2, 8, 10 or 16")
    if len(value) > meter.limits.max_int_str_digits:
        raise LimitExceeded(f"int() of a string longer than {meter.limits.max_int_str_digits}")
    if not value.isascii():  # the host also accepts other scripts' digits, per its Unicode version
        raise ContractError("int() of a string that is not a number")
    try:
        return check_int(meter, int(value, base))
    except ValueError:
        raise ContractError("int() of a string that is not a number") from None


def _bytes(meter: Meter, args: list[Any]) -> bytes:
    arity("bytes", args, 0, 1)
    if not args:
        return b""
    value = args[0]
    want("bytes", value, bytes, list, tuple)
    if type(value) is bytes:
        return bytes(value)
    meter.charge_size(len(value), "items")
    if not all(type(b) is int and 0 <= b < 256 for b in value):
        raise ContractError("bytes() needs integers 0..255")
    check_text(meter, len(value))
    return bytes(value)


def _bool(meter: Meter, args: list[Any]) -> bool:
    arity("bool", args, 0, 1)
    if args and type(args[0]) in (list, tuple, dict, str, bytes):
        return len(args[0]) > 0
    return bool(args[0]) if args else False


def _list(meter: Meter, args: list[Any]) -> list[Any]:
    arity("list", args, 0, 1)
    return new_container(meter, list(items_of(meter, args[0], "list")) if args else [])


def _tuple(meter: Meter, args: list[Any]) -> tuple[Any, ...]:
    arity("tuple", args, 0, 1)
    return tuple(new_container(meter, list(items_of(meter, args[0], "tuple")) if args else []))


def _dict(meter: Meter, args: list[Any]) -> dict[Any, Any]:
    arity("dict", args, 0, 1)
    if not args:
        return {}
    source = args[0]
    if type(source) is dict:
        meter.alloc(2 * SLOT_BYTES * len(source))
        return dict(source)
    pairs = items_of(meter, source, "dict")
    meter.charge_size(len(pairs), "items")
    result: dict[Any, Any] = {}
    for pair in pairs:
        if type(pair) not in (list, tuple) or len(pair) != 2:
            raise ContractError("dict() needs a list of (key, value) pairs")
        set_item(meter, result, pair[0], pair[1])
    return result


def has_key(meter: Meter, target: dict[Any, Any], key: Any) -> bool:
    """`key in target`, refusing keys that are not hashable contract values (lists, dicts, tuples of those)."""
    if type(key) not in (int, str, bytes, bool, type(None), tuple):
        raise ContractError(f"dict keys cannot be {type_name(key)}")
    if type(key) is tuple:
        meter.walk(key)
    try:
        return key in target
    except TypeError:
        raise ContractError("dict keys must not contain lists or dicts") from None


def set_item(meter: Meter, target: dict[Any, Any], key: Any, value: Any) -> None:
    """Store into a dict, keeping keys hashable contract values and the length bounded."""
    if not has_key(meter, target, key):
        if len(target) >= meter.limits.max_container_len:
            raise LimitExceeded(f"dict of more than {meter.limits.max_container_len} items")
        meter.alloc(2 * SLOT_BYTES)
    target[key] = value


def _sorted(meter: Meter, args: list[Any]) -> list[Any]:
    arity("sorted", args, 1, 1)
    return new_container(meter, ordered(meter, list(items_of(meter, args[0], "sorted")), "sorted"))


def _reversed(meter: Meter, args: list[Any]) -> list[Any]:
    arity("reversed", args, 1, 1)
    want("reversed", args[0], list, tuple, str, bytes)
    return new_container(meter, list(reversed(args[0])))


def _enumerate(meter: Meter, args: list[Any]) -> list[Any]:
    arity("enumerate", args, 1, 1)
    items = items_of(meter, args[0], "enumerate")
    meter.alloc(3 * SLOT_BYTES * len(items))
    return new_container(meter, list(enumerate(items)))


def _zip(meter: Meter, args: list[Any]) -> list[Any]:
    columns = [items_of(meter, arg, "zip") for arg in args]
    rows = list(zip(*columns, strict=False))
    meter.alloc(SLOT_BYTES * len(args) * len(rows))
    return new_container(meter, rows)


def _sum(meter: Meter, args: list[Any]) -> int:
    arity("sum", args, 1, 1)
    total = 0
    for item in items_of(meter, args[0], "sum"):
        want("sum", item, int, bool)
        total = check_int(meter, total + item)
    meter.charge_size(len(args[0]), "scan")
    return total


def _truth(value: Any) -> bool:
    return len(value) > 0 if type(value) in (list, tuple, dict, str, bytes) else bool(value)


def _any(meter: Meter, args: list[Any]) -> bool:
    arity("any", args, 1, 1)
    items = items_of(meter, args[0], "any")
    meter.charge_size(len(items), "scan")
    return any(_truth(v) for v in items)


def _all(meter: Meter, args: list[Any]) -> bool:
    arity("all", args, 1, 1)
    items = items_of(meter, args[0], "all")
    meter.charge_size(len(items), "scan")
    return all(_truth(v) for v in items)


def _hex(meter: Meter, args: list[Any]) -> str:
    arity("hex", args, 1, 1)
    want("hex", args[0], int)
    return hex(args[0])


def _fromhex(meter: Meter, args: list[Any]) -> bytes:
    arity("fromhex", args, 1, 1)
    want("fromhex", args[0], str)
    meter.charge_size(len(args[0]), "hash")
    try:
        return bytes.fromhex(args[0])
    except ValueError:
        raise ContractError("fromhex() of a string that is not hex") from None


def _sha256(meter: Meter, args: list[Any]) -> bytes:
    arity("sha256", args, 1, 1)
    want("sha256", args[0], bytes, str)
    data = args[0].encode() if type(args[0]) is str else args[0]
    meter.charge_size(len(data), "hash")
    return hashlib.sha256(data).digest()


def _address_of(meter: Meter, args: list[Any]) -> bytes:
    arity("address_of", args, 1, 1)
    want("address_of", args[0], bytes)
    return address_of(args[0])


def _type_name(meter: Meter, args: list[Any]) -> str:
    arity("type_name", args, 1, 1)
    return type_name(args[0])


def _revert(meter: Meter, args: list[Any]) -> None:
    arity("revert", args, 0, 1)
    message = to_str(meter, args[0]) if args else "reverted"
    raise Revert(message[:512])


BUILTINS: dict[str, Builtin] = {
    "len": _len,
    "range": _range,
    "min": _extreme(lambda v: v[0], "min"),
    "max": _extreme(lambda v: v[-1], "max"),
    "abs": _abs,
    "str": _str,
    "int": _int,
    "bytes": _bytes,
    "bool": _bool,
    "list": _list,
    "tuple": _tuple,
    "dict": _dict,
    "sorted": _sorted,
    "reversed": _reversed,
    "enumerate": _enumerate,
    "zip": _zip,
    "sum": _sum,
    "any": _any,
    "all": _all,
    "hex": _hex,
    "fromhex": _fromhex,
    "sha256": _sha256,
    "address_of": _address_of,
    "type_name": _type_name,
    "revert": _revert,
}
