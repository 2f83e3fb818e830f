"""A validated contract: its functions, constants and ABI."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from consensus.vm.names import INIT
from primitives import codec


@dataclass(frozen=True)
class Function:
    name: str
    params: tuple[str, ...]
    annotations: tuple[str | None, ...]  # ABI type per parameter; None only on private functions
    node: ast.FunctionDef

    @property
    def public(self) -> bool:
        """Callable from outside (transactions, views, other contracts): not `_private` and not `init`."""
        return not self.name.startswith("_") and self.name != INIT


@dataclass(frozen=True)
class Program:
    """What the interpreter runs. Built only by `validator.compile_contract`, so it is always well-formed."""

    source: str
    code_hash: bytes
    functions: Mapping[str, Function]
    constants: Mapping[str, Any]
    mutable_constants: frozenset[str]  # constants holding a list or dict: each read gets a fresh copy

    @property
    def init(self) -> Function | None:
        return self.functions.get(INIT)

    def abi(self) -> dict[str, codec.Value]:
        """The contract's ABI as a canonical value: public functions with typed parameters, and the constructor."""

        def describe(fn: Function) -> codec.Value:
            params: list[codec.Value] = [
                {"name": p, "type": t or "any"} for p, t in zip(fn.params, fn.annotations, strict=True)
            ]
            return {"name": fn.name, "params": params}

        functions = [describe(fn) for name, fn in sorted(self.functions.items()) if fn.public]
        init = self.init
        return {
            "code_hash": self.code_hash,
            "functions": list(functions),
            "init": describe(init) if init is not None else None,
        }
