"""The names the contract language knows: builtins, methods, `ctx` members, and names it refuses.

Kept apart from their implementations so the deploy-time validator and the interpreter agree on one list.
"""

from __future__ import annotations

BUILTIN_NAMES = frozenset(
    {
        "len", "range", "min", "max", "abs", "str", "int", "bytes", "bool", "list", "tuple", "dict", "sorted",
        "reversed", "enumerate", "zip", "sum", "any", "all", "hex", "fromhex", "sha256", "address_of",
        "type_name", "revert",
    }
)  # fmt: skip

# Method names callable on values; which type has which is decided at run time (builtins.METHODS).
METHOD_NAMES = frozenset(
    {
        "append", "extend", "pop", "insert", "index", "count", "remove", "reverse", "sort", "copy",
        "get", "keys", "values", "items", "setdefault", "update",
        "startswith", "endswith", "split", "join", "lower", "upper", "strip", "replace", "find", "encode",
        "isdigit", "hex", "decode",
    }
)  # fmt: skip

CTX = "ctx"
# Read-only facts about the call: who, where, when (see docs/VM.md "ctx").
CTX_FIELDS = frozenset({"caller", "caller_pk", "origin", "address", "height", "time"})
CTX_METHODS = frozenset({"get", "set", "delete", "has", "emit", "call"})

# Names a Python programmer might reach for, with the reason they are not there.
FORBIDDEN_NAMES: dict[str, str] = {
    name: f"'{name}' is not available in contracts (no host access)"
    for name in (
        "exec", "eval", "open", "compile", "getattr", "setattr", "delattr", "hasattr", "globals", "locals", "vars",
        "type", "object", "super", "input", "print", "breakpoint", "id", "hash", "memoryview", "bytearray",
        "iter", "next", "callable", "dir", "help", "exit", "quit", "classmethod", "staticmethod", "property",
        "isinstance", "issubclass", "format", "repr", "ascii", "chr", "ord", "divmod", "pow", "round", "map",
        "filter", "slice", "frozenset", "set", "float", "complex",
    )
}  # fmt: skip
FORBIDDEN_NAMES["float"] = "floats are not allowed in contracts (results must be identical on every node)"
FORBIDDEN_NAMES["complex"] = FORBIDDEN_NAMES["float"]
FORBIDDEN_NAMES["set"] = "sets are not allowed (their iteration order differs between nodes)"
FORBIDDEN_NAMES["frozenset"] = FORBIDDEN_NAMES["set"]

# The constructor: run once at deploy with the deploy transaction's arguments, never callable afterwards.
INIT = "init"
