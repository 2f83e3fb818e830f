"""The evaluator: walks a validated contract's AST and never hands any of it to the host's `exec`.

Dispatch is a table from AST node class to handler, and gas for each node comes from the cost table before the
handler runs (gas.py). Control flow is signalled by return values (`_BREAK`, `_CONTINUE`, `_RETURN`), not host
exceptions. Values are plain Python ints, strs, bytes, bools, None, lists, tuples and dicts; everything that
could grow is bounded in builtins.py / operators.py.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from consensus.vm.builtins import BUILTINS, check_text, items_of, new_container, set_item, to_str
from consensus.vm.comprehension import dict_comprehension, list_comprehension
from consensus.vm.errors import ContractError, ExecutionError, Revert
from consensus.vm.gas import GasSchedule, Meter
from consensus.vm.methods import METHODS
from consensus.vm.operators import binary, compare, contains, truth, unary
from consensus.vm.program import Function, Program
from consensus.vm.values import SLOT_BYTES, shallow_size, type_name

_BREAK = object()
_CONTINUE = object()
_RETURN = object()
_MISSING = object()


class Host(Protocol):
    """What `ctx` means for this call: supplied by the runtime (context.py)."""

    def field(self, name: str) -> Any: ...

    def method(self, name: str, args: list[Any]) -> Any: ...


def _copy_literal(value: Any) -> Any:
    """A fresh copy of a constant's lists and dicts (constants are literals: no cycles, no sharing)."""
    kind = type(value)
    if kind is list:
        return [_copy_literal(item) for item in value]
    if kind is tuple:
        return tuple(_copy_literal(item) for item in value)
    if kind is dict:
        return {key: _copy_literal(item) for key, item in value.items()}
    return value


def node_costs(schedule: GasSchedule) -> dict[type, int]:
    """The cost table keyed by node class, computed once per schedule."""
    return {getattr(ast, name): cost for name, cost in schedule.nodes.items()}


class Interpreter:
    """Runs functions of one program for one call frame chain; `line` is the statement being executed."""

    def __init__(self, program: Program, host: Host, meter: Meter, costs: Mapping[type, int]) -> None:
        self.program = program
        self.host = host
        self.meter = meter
        self.costs = costs
        self.locals: dict[str, Any] = {}
        self.result: Any = None
        self.line = 0

    def invoke(self, fn: Function, args: list[Any]) -> Any:
        """Run `fn` with already-checked arguments; errors carry the line they happened on."""
        meter = self.meter
        meter.enter()
        meter.charge(meter.schedule.function_call)
        saved = self.locals
        self.locals = dict(zip(fn.params, args, strict=True))
        try:
            signal = self.block(fn.node.body)
            result = self.result if signal is _RETURN else None
        except ExecutionError as exc:
            if exc.line is None:
                exc.line = self.line
            raise
        finally:
            self.locals = saved
            meter.leave()
        self.result = None
        return result

    # --- statements -------------------------------------------------------------------------------------------

    def block(self, body: list[ast.stmt]) -> object | None:
        meter = self.meter
        costs = self.costs
        for stmt in body:
            kind = type(stmt)
            meter.remaining -= costs[kind]
            if meter.remaining < 0:
                meter.charge(0)
            self.line = stmt.lineno
            signal = _STATEMENTS[kind](self, stmt)
            if signal is not None:
                return signal
        return None

    def _expr_stmt(self, node: ast.Expr) -> None:
        self.eval(node.value)

    def _assign(self, node: ast.Assign) -> None:
        value = self.eval(node.value)
        for target in node.targets:
            self.store(target, value)

    def _ann_assign(self, node: ast.AnnAssign) -> None:
        assert node.value is not None  # the validator requires a value
        self.store(node.target, self.eval(node.value))

    def _aug_assign(self, node: ast.AugAssign) -> None:
        target = node.target
        if type(target) is ast.Name:
            name = target.id
            current = self.locals[name] if name in self.locals else self.load_name(name)
            self.locals[name] = binary(self.meter, node.op, current, self.eval(node.value))
            return
        assert type(target) is ast.Subscript
        container = self.eval(target.value)
        if type(target.slice) is ast.Slice:
            raise ContractError("slice assignment is not supported")
        key = self.eval(target.slice)
        updated = binary(self.meter, node.op, self.get_item(container, key), self.eval(node.value))
        self.set_item(container, key, updated)

    def _return(self, node: ast.Return) -> object:
        self.result = self.eval(node.value) if node.value is not None else None
        return _RETURN

    def _if(self, node: ast.If) -> object | None:
        return self.block(node.body if truth(self.eval(node.test)) else node.orelse)

    def _while(self, node: ast.While) -> object | None:
        meter = self.meter
        turn = meter.schedule.loop_iteration
        while True:
            meter.remaining -= turn
            if meter.remaining < 0:
                meter.charge(0)
            if not truth(self.eval(node.test)):
                return None
            signal = self.block(node.body)
            if signal is _BREAK:
                return None
            if signal is _RETURN:
                return signal

    def _for(self, node: ast.For) -> object | None:
        meter = self.meter
        turn = meter.schedule.loop_iteration
        for item in items_of(meter, self.eval(node.iter), "for"):
            meter.remaining -= turn
            if meter.remaining < 0:
                meter.charge(0)
            self.store(node.target, item)
            signal = self.block(node.body)
            if signal is _BREAK:
                return None
            if signal is _RETURN:
                return signal
        return None

    def _break(self, node: ast.Break) -> object:
        return _BREAK

    def _continue(self, node: ast.Continue) -> object:
        return _CONTINUE

    def _pass(self, node: ast.Pass) -> None:
        return None

    def _assert(self, node: ast.Assert) -> None:
        if not truth(self.eval(node.test)):
            message = to_str(self.meter, self.eval(node.msg)) if node.msg is not None else "assertion failed"
            raise Revert(message[:512])

    def _delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            assert type(target) is ast.Subscript
            container = self.eval(target.value)
            if type(target.slice) is ast.Slice:
                raise ContractError("slice deletion is not supported")
            key = self.eval(target.slice)
            if type(container) is dict:
                if not contains(self.meter, container, key):
                    raise ContractError("del: key not found")
                del container[key]
            elif type(container) is list:
                index = self._index(container, key)
                self.meter.charge_size(len(container), "shift")
                del container[index]
            else:
                raise ContractError(f"{type_name(container)} does not support item deletion")

    # --- assignment helpers -----------------------------------------------------------------------------------

    def store(self, target: ast.expr, value: Any) -> None:
        kind = type(target)
        if kind is ast.Name:
            self.locals[target.id] = value  # type: ignore[attr-defined]
        elif kind is ast.Subscript:
            assert isinstance(target, ast.Subscript)
            container = self.eval(target.value)
            if type(target.slice) is ast.Slice:
                raise ContractError("slice assignment is not supported")
            self.set_item(container, self.eval(target.slice), value)
        else:
            assert isinstance(target, ast.Tuple | ast.List)
            items = items_of(self.meter, value, "unpacking")
            if len(items) != len(target.elts):
                raise ContractError(f"cannot unpack {len(items)} values into {len(target.elts)} names")
            for sub, item in zip(target.elts, list(items), strict=True):
                self.store(sub, item)

    def set_item(self, container: Any, key: Any, value: Any) -> None:
        if type(container) is dict:
            set_item(self.meter, container, key, value)
        elif type(container) is list:
            container[self._index(container, key)] = value
        else:
            raise ContractError(f"{type_name(container)} does not support item assignment")

    def _index(self, sequence: Any, key: Any) -> int:
        if type(key) is not int and type(key) is not bool:
            raise ContractError(f"{type_name(sequence)} indices must be int, not {type_name(key)}")
        if not -len(sequence) <= key < len(sequence):
            raise ContractError(f"{type_name(sequence)} index out of range")
        return int(key)

    def get_item(self, container: Any, key: Any) -> Any:
        kind = type(container)
        if kind is dict:
            if not contains(self.meter, container, key):
                raise ContractError("key not found")
            return container[key]
        if kind is list or kind is tuple or kind is str or kind is bytes:
            return container[self._index(container, key)]
        raise ContractError(f"{type_name(container)} is not subscriptable")

    # --- expressions ------------------------------------------------------------------------------------------

    def eval(self, node: ast.expr) -> Any:
        kind = type(node)
        meter = self.meter
        meter.remaining -= self.costs[kind]
        if meter.remaining < 0:
            meter.charge(0)
        return _EXPRESSIONS[kind](self, node)

    def load_name(self, name: str) -> Any:
        value = self.locals.get(name, _MISSING)
        if value is not _MISSING:
            return value
        program = self.program
        if name in program.constants:
            value = program.constants[name]
            if name in program.mutable_constants:
                # Constants are shared by every call: hand out a copy so a call cannot change them.
                weight = self.meter.walk(value)
                self.meter.alloc(SLOT_BYTES * weight)
                return _copy_literal(value)
            return value
        raise ContractError(f"name '{name}' is not defined")

    def _constant(self, node: ast.Constant) -> Any:
        return node.value

    def _name(self, node: ast.Name) -> Any:
        return self.load_name(node.id)

    def _attribute(self, node: ast.Attribute) -> Any:
        return self.host.field(node.attr)  # only ctx.<field> passes the validator

    def _subscript(self, node: ast.Subscript) -> Any:
        container = self.eval(node.value)
        index = node.slice
        if type(index) is not ast.Slice:
            return self.get_item(container, self.eval(index))
        assert isinstance(index, ast.Slice)
        bounds = [self.eval(part) if part is not None else None for part in (index.lower, index.upper, index.step)]
        if not all(b is None or type(b) is int for b in bounds):
            raise ContractError("slice bounds must be int or None")
        if bounds[2] == 0:
            raise ContractError("slice step must not be zero")
        if type(container) not in (list, tuple, str, bytes):
            raise ContractError(f"{type_name(container)} cannot be sliced")
        result = container[slice(*bounds)]
        self.meter.alloc(shallow_size(result))
        return result

    def _binop(self, node: ast.BinOp) -> Any:
        return binary(self.meter, node.op, self.eval(node.left), self.eval(node.right))

    def _unaryop(self, node: ast.UnaryOp) -> Any:
        return unary(self.meter, node.op, self.eval(node.operand))

    def _boolop(self, node: ast.BoolOp) -> Any:
        is_and = type(node.op) is ast.And
        value: Any = None
        for part in node.values:
            value = self.eval(part)
            if truth(value) != is_and:
                return value
        return value

    def _compare(self, node: ast.Compare) -> bool:
        left = self.eval(node.left)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self.eval(comparator)
            if not compare(self.meter, op, left, right):
                return False
            left = right
        return True

    def _ifexp(self, node: ast.IfExp) -> Any:
        return self.eval(node.body if truth(self.eval(node.test)) else node.orelse)

    def _call(self, node: ast.Call) -> Any:
        func = node.func
        meter = self.meter
        if type(func) is ast.Attribute:
            owner = func.value
            if type(owner) is ast.Name and owner.id == "ctx":
                return self.host.method(func.attr, [self.eval(arg) for arg in node.args])
            target = self.eval(owner)  # the owner before the arguments, as in Python
            args = [self.eval(arg) for arg in node.args]
            method = METHODS.get((type(target), func.attr))
            if method is None:
                raise ContractError(f"{type_name(target)} has no method '{func.attr}'")
            meter.charge(meter.schedule.builtins["method"])
            return method(meter, target, args)
        assert type(func) is ast.Name
        args = [self.eval(arg) for arg in node.args]
        fn = self.program.functions.get(func.id)
        if fn is not None:
            return self.invoke(fn, args)
        meter.charge(meter.schedule.builtins[func.id])
        return BUILTINS[func.id](meter, args)

    def _list(self, node: ast.List) -> list[Any]:
        return new_container(self.meter, [self.eval(item) for item in node.elts])

    def _tuple(self, node: ast.Tuple) -> tuple[Any, ...]:
        return tuple(new_container(self.meter, [self.eval(item) for item in node.elts]))

    def _dict(self, node: ast.Dict) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key, value in zip(node.keys, node.values, strict=True):
            assert key is not None
            set_item(self.meter, result, self.eval(key), self.eval(value))
        return result

    def _joinedstr(self, node: ast.JoinedStr) -> str:
        parts: list[str] = []
        for value in node.values:
            if type(value) is ast.Constant:
                parts.append(str(value.value))
            else:
                assert isinstance(value, ast.FormattedValue)
                parts.append(to_str(self.meter, self.eval(value.value)))
        check_text(self.meter, sum(len(p) for p in parts))
        return "".join(parts)


_STATEMENTS: dict[type, Callable[[Interpreter, Any], object | None]] = {
    ast.Expr: Interpreter._expr_stmt,
    ast.Assign: Interpreter._assign,
    ast.AnnAssign: Interpreter._ann_assign,
    ast.AugAssign: Interpreter._aug_assign,
    ast.Return: Interpreter._return,
    ast.If: Interpreter._if,
    ast.While: Interpreter._while,
    ast.For: Interpreter._for,
    ast.Break: Interpreter._break,
    ast.Continue: Interpreter._continue,
    ast.Pass: Interpreter._pass,
    ast.Assert: Interpreter._assert,
    ast.Delete: Interpreter._delete,
}

_EXPRESSIONS: dict[type, Callable[[Interpreter, Any], Any]] = {
    ast.Constant: Interpreter._constant,
    ast.Name: Interpreter._name,
    ast.Attribute: Interpreter._attribute,
    ast.Subscript: Interpreter._subscript,
    ast.BinOp: Interpreter._binop,
    ast.UnaryOp: Interpreter._unaryop,
    ast.BoolOp: Interpreter._boolop,
    ast.Compare: Interpreter._compare,
    ast.IfExp: Interpreter._ifexp,
    ast.Call: Interpreter._call,
    ast.List: Interpreter._list,
    ast.Tuple: Interpreter._tuple,
    ast.Dict: Interpreter._dict,
    ast.ListComp: list_comprehension,
    ast.GeneratorExp: list_comprehension,
    ast.DictComp: dict_comprehension,
    ast.JoinedStr: Interpreter._joinedstr,
}
