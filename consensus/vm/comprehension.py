"""List, dict and generator comprehensions (generators are evaluated eagerly: the VM has no host iterators)."""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any, Protocol

from consensus.vm.builtins import items_of, set_item
from consensus.vm.errors import LimitExceeded
from consensus.vm.gas import Meter
from consensus.vm.operators import truth
from consensus.vm.values import SLOT_BYTES

_MISSING = object()


class Interpreter(Protocol):
    """What a comprehension needs of the interpreter that evaluates it (consensus/vm/interpreter.py, which
    imports this module): its meter, its local variables, and evaluating and assigning expressions."""

    meter: Meter
    locals: dict[str, Any]

    def eval(self, node: ast.expr) -> Any: ...

    def store(self, target: ast.expr, value: Any) -> None: ...


def list_comprehension(interp: Interpreter, node: ast.ListComp | ast.GeneratorExp) -> list[Any]:
    result: list[Any] = []
    limit = interp.meter.limits.max_container_len

    def emit() -> None:
        if len(result) >= limit:
            raise LimitExceeded(f"more than {limit} items")
        interp.meter.alloc(SLOT_BYTES)
        result.append(interp.eval(node.elt))

    _comprehend(interp, node.generators, emit)
    return result


def dict_comprehension(interp: Interpreter, node: ast.DictComp) -> dict[Any, Any]:
    result: dict[Any, Any] = {}

    def emit() -> None:
        set_item(interp.meter, result, interp.eval(node.key), interp.eval(node.value))

    _comprehend(interp, node.generators, emit)
    return result


def _comprehend(interp: Interpreter, generators: list[ast.comprehension], emit: Callable[[], None]) -> None:
    # Comprehension variables do not leak into the function, as in Python 3.
    names = {name for g in generators for name in _target_names(g.target)}
    saved = {name: interp.locals.get(name, _MISSING) for name in names}
    try:
        _generate(interp, generators, 0, emit)
    finally:
        for name, value in saved.items():
            if value is _MISSING:
                interp.locals.pop(name, None)
            else:
                interp.locals[name] = value


def _target_names(target: ast.expr) -> list[str]:
    # The validator allows a name or a tuple of names here.
    if isinstance(target, ast.Name):
        return [target.id]
    assert isinstance(target, ast.Tuple)
    return [item.id for item in target.elts if isinstance(item, ast.Name)]


def _generate(interp: Interpreter, generators: list[ast.comprehension], level: int, emit: Callable[[], None]) -> None:
    if level == len(generators):
        emit()
        return
    gen = generators[level]
    meter = interp.meter
    for item in items_of(meter, interp.eval(gen.iter), "comprehension"):
        meter.charge(meter.schedule.loop_iteration)
        interp.store(gen.target, item)
        if all(truth(interp.eval(cond)) for cond in gen.ifs):
            _generate(interp, generators, level + 1, emit)
