"""Whitelisted methods of list, dict, tuple, str and bytes, looked up by (runtime type, name).

Never `getattr` on a host object: a method exists for a contract only if this table has it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from consensus.vm.builtins import arity, check_text, has_key, items_of, new_container, ordered, set_item, want
from consensus.vm.errors import ContractError, LimitExceeded
from consensus.vm.gas import Meter
from consensus.vm.values import SLOT_BYTES

Method = Callable[[Meter, Any, list[Any]], Any]


def _grow(meter: Meter, target: list[Any], extra: int) -> None:
    if len(target) + extra > meter.limits.max_container_len:
        raise LimitExceeded(f"list of more than {meter.limits.max_container_len} items")
    meter.alloc(SLOT_BYTES * extra)


def _find_cost(meter: Meter, target: Any, needle: Any) -> None:
    """Searching compares the needle with each element: charge by the weight of both."""
    meter.charge_size(meter.walk(target) + meter.walk(needle), "compare")


def _append(meter: Meter, target: list[Any], args: list[Any]) -> None:
    arity("append", args, 1, 1)
    _grow(meter, target, 1)
    target.append(args[0])


def _extend(meter: Meter, target: list[Any], args: list[Any]) -> None:
    arity("extend", args, 1, 1)
    items = items_of(meter, args[0], "extend")
    _grow(meter, target, len(items))
    target.extend(list(items))


def _list_pop(meter: Meter, target: list[Any], args: list[Any]) -> Any:
    arity("pop", args, 0, 1)
    if not target:
        raise ContractError("pop from an empty list")
    index = args[0] if args else -1
    want("pop", index, int)
    if not -len(target) <= index < len(target):
        raise ContractError("pop index out of range")
    meter.charge_size(len(target), "shift")
    return target.pop(index)


def _insert(meter: Meter, target: list[Any], args: list[Any]) -> None:
    arity("insert", args, 2, 2)
    want("insert", args[0], int)
    _grow(meter, target, 1)
    meter.charge_size(len(target), "shift")
    target.insert(args[0], args[1])


def _index(meter: Meter, target: Any, args: list[Any]) -> int:
    arity("index", args, 1, 1)
    _find_cost(meter, target, args[0])
    if args[0] not in target:
        raise ContractError("index(): value not found")
    return target.index(args[0])  # type: ignore[no-any-return]


def _count(meter: Meter, target: Any, args: list[Any]) -> int:
    arity("count", args, 1, 1)
    if type(target) in (str, bytes):
        want("count", args[0], type(target))
        meter.charge_size(len(target), "text")
    else:
        _find_cost(meter, target, args[0])
    return target.count(args[0])  # type: ignore[no-any-return]


def _remove(meter: Meter, target: list[Any], args: list[Any]) -> None:
    arity("remove", args, 1, 1)
    _find_cost(meter, target, args[0])
    if args[0] not in target:
        raise ContractError("remove(): value not found")
    target.remove(args[0])


def _reverse(meter: Meter, target: list[Any], args: list[Any]) -> None:
    arity("reverse", args, 0, 0)
    meter.charge_size(len(target), "shift")
    target.reverse()


def _sort(meter: Meter, target: list[Any], args: list[Any]) -> None:
    arity("sort", args, 0, 0)
    target[:] = ordered(meter, list(target), "sort")


def _copy(meter: Meter, target: Any, args: list[Any]) -> Any:
    arity("copy", args, 0, 0)
    meter.alloc(SLOT_BYTES * len(target) * (2 if type(target) is dict else 1))
    return target.copy()


def _get(meter: Meter, target: dict[Any, Any], args: list[Any]) -> Any:
    arity("get", args, 1, 2)
    if has_key(meter, target, args[0]):
        return target[args[0]]
    return args[1] if len(args) == 2 else None


def _keys(meter: Meter, target: dict[Any, Any], args: list[Any]) -> list[Any]:
    arity("keys", args, 0, 0)
    return new_container(meter, list(target.keys()))


def _values(meter: Meter, target: dict[Any, Any], args: list[Any]) -> list[Any]:
    arity("values", args, 0, 0)
    return new_container(meter, list(target.values()))


def _items(meter: Meter, target: dict[Any, Any], args: list[Any]) -> list[Any]:
    arity("items", args, 0, 0)
    meter.alloc(2 * SLOT_BYTES * len(target))
    return new_container(meter, list(target.items()))


def _dict_pop(meter: Meter, target: dict[Any, Any], args: list[Any]) -> Any:
    arity("pop", args, 1, 2)
    if has_key(meter, target, args[0]):
        return target.pop(args[0])
    if len(args) == 2:
        return args[1]
    raise ContractError("pop(): key not found")


def _setdefault(meter: Meter, target: dict[Any, Any], args: list[Any]) -> Any:
    arity("setdefault", args, 2, 2)
    if not has_key(meter, target, args[0]):
        set_item(meter, target, args[0], args[1])
    return target[args[0]]


def _update(meter: Meter, target: dict[Any, Any], args: list[Any]) -> None:
    arity("update", args, 1, 1)
    want("update", args[0], dict)
    for key, value in list(args[0].items()):
        set_item(meter, target, key, value)


def _affix(check: Callable[[Any, Any], bool], name: str) -> Method:
    def run(meter: Meter, target: Any, args: list[Any]) -> bool:
        arity(name, args, 1, 1)
        want(name, args[0], type(target))
        meter.charge_size(len(args[0]), "text")
        return check(target, args[0])

    return run


# Case mapping and whitespace are ASCII-only: the host's Unicode tables change between Python versions, and
# nodes running different versions must still agree.
_ASCII_WHITESPACE = " \t\n\r\x0b\x0c"
_TO_SPACE = str.maketrans(_ASCII_WHITESPACE, " " * len(_ASCII_WHITESPACE))
_TO_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_TO_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _split(meter: Meter, target: str, args: list[Any]) -> list[str]:
    arity("split", args, 0, 2)
    sep = args[0] if args else None
    want("split", sep, str, type(None))
    if sep == "":
        raise ContractError("split(): empty separator")
    limit = args[1] if len(args) == 2 else -1
    want("split", limit, int)
    meter.charge_size(len(target), "text")
    if sep is None:
        if limit != -1:
            raise ContractError("split(): a limit needs an explicit separator")
        meter.charge_size(len(target), "translate")
        parts = [part for part in target.translate(_TO_SPACE).split(" ") if part]
    else:
        parts = target.split(sep, limit)
    meter.charge_size(len(parts), "items")
    return new_container(meter, parts)


def _join(meter: Meter, target: str, args: list[Any]) -> str:
    arity("join", args, 1, 1)
    parts = items_of(meter, args[0], "join")
    meter.charge_size(len(parts), "items")
    if not all(type(p) is str for p in parts):
        raise ContractError("join() needs a list of str")
    check_text(meter, sum(len(p) for p in parts) + len(target) * max(0, len(parts) - 1))
    return target.join(parts)


def _case(table: dict[int, int], name: str) -> Method:
    def run(meter: Meter, target: str, args: list[Any]) -> str:
        arity(name, args, 0, 0)
        meter.charge_size(len(target), "translate")
        check_text(meter, len(target))
        return target.translate(table)

    return run


def _strip(meter: Meter, target: str, args: list[Any]) -> str:
    arity("strip", args, 0, 1)
    if args:
        want("strip", args[0], str)
    meter.charge_size(len(target), "text")
    return target.strip(args[0] if args else _ASCII_WHITESPACE)


def _replace(meter: Meter, target: str, args: list[Any]) -> str:
    arity("replace", args, 2, 2)
    want("replace", args[0], str)
    want("replace", args[1], str)
    if args[0] == "":
        raise ContractError("replace(): empty pattern")
    meter.charge_size(len(target), "text")
    hits = target.count(args[0])
    check_text(meter, len(target) + hits * (len(args[1]) - len(args[0])))
    return target.replace(args[0], args[1])


def _find(meter: Meter, target: Any, args: list[Any]) -> int:
    arity("find", args, 1, 1)
    want("find", args[0], type(target))
    meter.charge_size(len(target) + len(args[0]), "text")
    return target.find(args[0])  # type: ignore[no-any-return]


def _encode(meter: Meter, target: str, args: list[Any]) -> bytes:
    arity("encode", args, 0, 0)
    try:
        data = target.encode("utf-8")
    except UnicodeEncodeError:
        raise ContractError("encode(): string is not valid unicode") from None
    check_text(meter, len(data))
    return data


def _isdigit(meter: Meter, target: str, args: list[Any]) -> bool:
    arity("isdigit", args, 0, 0)
    meter.charge_size(len(target), "text")
    return target.isascii() and target.isdigit()


def _hex(meter: Meter, target: bytes, args: list[Any]) -> str:
    arity("hex", args, 0, 0)
    check_text(meter, 2 * len(target))
    return target.hex()


def _decode(meter: Meter, target: bytes, args: list[Any]) -> str:
    arity("decode", args, 0, 0)
    check_text(meter, len(target))
    try:
        return target.decode("utf-8")
    except UnicodeDecodeError:
        raise ContractError("decode(): bytes are not valid UTF-8") from None


_STARTS = _affix(lambda s, p: s.startswith(p), "startswith")
_ENDS = _affix(lambda s, p: s.endswith(p), "endswith")

METHODS: dict[tuple[type, str], Method] = {
    (list, "append"): _append,
    (list, "extend"): _extend,
    (list, "pop"): _list_pop,
    (list, "insert"): _insert,
    (list, "index"): _index,
    (list, "count"): _count,
    (list, "remove"): _remove,
    (list, "reverse"): _reverse,
    (list, "sort"): _sort,
    (list, "copy"): _copy,
    (tuple, "index"): _index,
    (tuple, "count"): _count,
    (dict, "get"): _get,
    (dict, "keys"): _keys,
    (dict, "values"): _values,
    (dict, "items"): _items,
    (dict, "pop"): _dict_pop,
    (dict, "setdefault"): _setdefault,
    (dict, "update"): _update,
    (dict, "copy"): _copy,
    (str, "startswith"): _STARTS,
    (str, "endswith"): _ENDS,
    (str, "split"): _split,
    (str, "join"): _join,
    (str, "lower"): _case(_TO_LOWER, "lower"),
    (str, "upper"): _case(_TO_UPPER, "upper"),
    (str, "strip"): _strip,
    (str, "replace"): _replace,
    (str, "find"): _find,
    (str, "count"): _count,
    (str, "encode"): _encode,
    (str, "isdigit"): _isdigit,
    (bytes, "hex"): _hex,
    (bytes, "decode"): _decode,
    (bytes, "startswith"): _STARTS,
    (bytes, "endswith"): _ENDS,
    (bytes, "find"): _find,
    (bytes, "count"): _count,
}
