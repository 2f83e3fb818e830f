"""Deploy-time check of a contract's source: parse with `ast`, accept only the contract subset of Python.

Whitelist, not blacklist: a node type is accepted only if it is listed in `_ALLOWED`; a few common ones have a
tailored reason in `_FORBIDDEN`. Names are resolved statically, so at run time every name is a parameter or
local, a module constant, a function, a builtin or `ctx`, and a Python escape hatch such as `().__class__` or
`getattr` never reaches the interpreter. Each rejection carries the line number.
"""

from __future__ import annotations

import ast
import hashlib
from typing import Any

from consensus.vm.errors import ValidationError
from consensus.vm.gas import DEFAULT_LIMITS, Limits
from consensus.vm.names import BUILTIN_NAMES, CTX, CTX_FIELDS, CTX_METHODS, FORBIDDEN_NAMES, INIT, METHOD_NAMES
from consensus.vm.program import Function, Program
from consensus.vm.values import ABI_TYPES

# The accepted node types, by group (anything else is refused).
_STATEMENT_NODES = "Expr Assign AugAssign AnnAssign Return If For While Break Continue Pass Assert Delete"
_EXPRESSION_NODES = (
    "Constant Name Attribute Subscript Slice BinOp UnaryOp BoolOp Compare IfExp Call List Tuple Dict ListComp "
    "GeneratorExp DictComp JoinedStr FormattedValue comprehension"
)
_OPERATOR_NODES = (
    "Load Store Del And Or UAdd USub Not Invert Add Sub Mult FloorDiv Mod Pow LShift RShift BitOr BitXor BitAnd "
    "Eq NotEq Lt LtE Gt GtE Is IsNot In NotIn"
)
_ALLOWED: frozenset[type] = frozenset(
    getattr(ast, name) for group in (_STATEMENT_NODES, _EXPRESSION_NODES, _OPERATOR_NODES) for name in group.split()
)

_FORBIDDEN: dict[type, str] = {
    ast.Import: "import is not allowed",
    ast.ImportFrom: "import is not allowed",
    ast.ClassDef: "class definitions are not allowed",
    ast.Lambda: "lambda is not allowed; define a module-level function",
    ast.Global: "global is not allowed; keep state in storage (ctx.set)",
    ast.Nonlocal: "nonlocal is not allowed",
    ast.With: "with is not allowed",
    ast.AsyncWith: "with is not allowed",
    ast.Try: "try/except is not allowed: a failing call reverts as a whole",
    ast.TryStar: "try/except is not allowed: a failing call reverts as a whole",
    ast.Raise: "raise is not allowed; call revert(message)",
    ast.AsyncFunctionDef: "async functions are not allowed",
    ast.AsyncFor: "async for is not allowed",
    ast.Await: "await is not allowed",
    ast.Yield: "generators are not allowed",
    ast.YieldFrom: "generators are not allowed",
    ast.NamedExpr: "the walrus operator is not allowed",
    ast.Set: "sets are not allowed (their iteration order differs between nodes)",
    ast.SetComp: "sets are not allowed (their iteration order differs between nodes)",
    ast.Starred: "star-unpacking is not allowed",
    ast.Match: "match is not allowed",
    ast.Div: "true division '/' yields floats; use '//'",
    ast.MatMult: "the '@' operator is not allowed",
    ast.FunctionDef: "nested functions are not allowed",
}


def _is_dunder(name: str) -> bool:
    return "__" in name


def _literal(node: ast.expr, limits: Limits, depth: int = 0) -> Any:
    """The value of a module-level constant: literals, tuples, lists and dicts of literals, negative numbers."""
    if depth > limits.max_nesting:
        raise ValidationError(node.lineno, f"nesting deeper than {limits.max_nesting} levels")
    if isinstance(node, ast.Constant) and type(node.value) in (int, str, bytes, bool, type(None)):
        if type(node.value) is int and node.value.bit_length() > limits.max_int_bits:
            raise ValidationError(node.lineno, f"integer literal wider than {limits.max_int_bits} bits")
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _literal(node.operand, limits, depth + 1)
        if type(inner) is int:
            return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.Tuple):
        return tuple(_literal(item, limits, depth + 1) for item in node.elts)
    if isinstance(node, ast.List):
        return [_literal(item, limits, depth + 1) for item in node.elts]
    if isinstance(node, ast.Dict) and all(key is not None for key in node.keys):
        keys = [_literal(key, limits, depth + 1) for key in node.keys if key is not None]
        return dict(zip(keys, (_literal(value, limits, depth + 1) for value in node.values), strict=True))
    raise ValidationError(
        node.lineno,
        "module-level constants must be literals (numbers, strings, bytes, "
        "bools, None, and tuples, lists or dicts of those)",
    )


class _FunctionChecker:
    """Checks one function body against the names the module defines."""

    def __init__(self, fn: ast.FunctionDef, arity: dict[str, int], constants: set[str], limits: Limits) -> None:
        self.arity = arity
        self.constants = constants
        self.limits = limits
        self.line = fn.lineno
        self.locals = {arg.arg for arg in fn.args.args}
        for arg in fn.args.args:
            self._check_binding(arg.arg, arg.lineno)
        for node in ast.walk(fn):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                self._check_binding(node.id, node.lineno)
                self.locals.add(node.id)

    def _check_binding(self, name: str, line: int) -> None:
        if _is_dunder(name):
            raise ValidationError(line, f"dunder name '{name}' is not allowed")
        if name == CTX or name in BUILTIN_NAMES:
            raise ValidationError(line, f"cannot bind '{name}': it is a reserved name")
        if name in self.arity or name in self.constants:
            raise ValidationError(line, f"cannot assign to '{name}': module functions and constants are fixed")

    def check(self, node: ast.AST, depth: int) -> None:
        # Operators and contexts carry no line of their own: report the enclosing node's.
        line = self.line = getattr(node, "lineno", self.line)
        if depth > self.limits.max_nesting:
            raise ValidationError(line, f"nesting deeper than {self.limits.max_nesting} levels")
        kind = type(node)
        if kind in _FORBIDDEN:
            raise ValidationError(line, _FORBIDDEN[kind])
        if kind not in _ALLOWED:
            raise ValidationError(line, f"{kind.__name__} is not allowed")
        special = getattr(self, "_check_" + kind.__name__, None)
        if special is not None:
            special(node, depth)
            return
        for child in ast.iter_child_nodes(node):
            self.check(child, depth + 1)

    def _children(self, nodes: list[Any], depth: int) -> None:
        for child in nodes:
            if child is not None:
                self.check(child, depth + 1)

    def _check_Constant(self, node: ast.Constant, depth: int) -> None:
        value = node.value
        if type(value) is float or type(value) is complex:
            raise ValidationError(node.lineno, "float literals are not allowed")
        if type(value) not in (int, str, bytes, bool, type(None)):
            raise ValidationError(node.lineno, f"literal {value!r} is not allowed")
        if type(value) is int and value.bit_length() > self.limits.max_int_bits:
            raise ValidationError(node.lineno, f"integer literal wider than {self.limits.max_int_bits} bits")

    def _check_Name(self, node: ast.Name, depth: int) -> None:
        name = node.id
        if _is_dunder(name):
            raise ValidationError(node.lineno, f"dunder name '{name}' is not allowed")
        if name in self.locals or name in self.constants:
            return  # a local may reuse a host builtin's name (`id`): it can only ever mean the local
        if name in FORBIDDEN_NAMES:
            raise ValidationError(node.lineno, FORBIDDEN_NAMES[name])
        if name == CTX:
            raise ValidationError(node.lineno, "ctx can only be used as ctx.<field> or ctx.<method>(...)")
        if name in self.arity or name in BUILTIN_NAMES:
            raise ValidationError(node.lineno, f"functions are not values: call '{name}(...)'")
        raise ValidationError(node.lineno, f"name '{name}' is not defined")

    def _check_Attribute(self, node: ast.Attribute, depth: int, is_call: bool = False) -> None:
        attr = node.attr
        if _is_dunder(attr):
            raise ValidationError(node.lineno, f"dunder attribute '{attr}' is not allowed")
        if isinstance(node.value, ast.Name) and node.value.id == CTX:
            allowed = CTX_METHODS if is_call else CTX_FIELDS
            if attr not in allowed:
                raise ValidationError(node.lineno, f"ctx has no {'method' if is_call else 'field'} '{attr}'")
            return
        if not is_call:
            raise ValidationError(node.lineno, f"attribute access '.{attr}' is not allowed (only method calls)")
        if attr not in METHOD_NAMES:
            raise ValidationError(node.lineno, f"method '{attr}' is not allowed")
        self.check(node.value, depth + 1)

    def _check_Call(self, node: ast.Call, depth: int) -> None:
        if node.keywords:
            raise ValidationError(node.lineno, "keyword arguments are not allowed")
        func = node.func
        if isinstance(func, ast.Attribute):
            self._check_Attribute(func, depth + 1, is_call=True)
        elif isinstance(func, ast.Name):
            name = func.id
            if _is_dunder(name):
                raise ValidationError(node.lineno, f"dunder name '{name}' is not allowed")
            if name in FORBIDDEN_NAMES and name not in self.locals:
                raise ValidationError(node.lineno, FORBIDDEN_NAMES[name])
            if name in self.arity:
                if len(node.args) != self.arity[name]:
                    raise ValidationError(node.lineno, f"{name}() takes {self.arity[name]} arguments")
                if name == INIT:
                    raise ValidationError(node.lineno, "init() runs only at deploy")
            elif name not in BUILTIN_NAMES:
                known = name in self.locals or name in self.constants or name == CTX
                raise ValidationError(
                    node.lineno, f"'{name}' is not callable" if known else f"name '{name}' is not defined"
                )
        else:
            raise ValidationError(node.lineno, "only named functions and methods can be called")
        self._children(node.args, depth)

    def _check_Compare(self, node: ast.Compare, depth: int) -> None:
        # `is` on ints or strings depends on host interning; only the None/True/False singletons are safe.
        operands = [node.left, *node.comparators]
        for i, op in enumerate(node.ops):
            if isinstance(op, ast.Is | ast.IsNot) and not any(
                isinstance(o, ast.Constant) and (o.value is None or type(o.value) is bool)
                for o in (operands[i], operands[i + 1])
            ):
                raise ValidationError(node.lineno, "'is' may only compare with None, True or False")
        self._children(operands, depth)

    def _check_comprehension(self, node: ast.comprehension, depth: int) -> None:
        if node.is_async:
            raise ValidationError(node.iter.lineno, "async comprehensions are not allowed")
        targets = node.target.elts if isinstance(node.target, ast.Tuple) else [node.target]
        if not all(isinstance(t, ast.Name) for t in targets):
            raise ValidationError(node.iter.lineno, "comprehension targets must be names")
        self._children([node.iter, *node.ifs], depth)

    def _check_FormattedValue(self, node: ast.FormattedValue, depth: int) -> None:
        if node.conversion != -1 or node.format_spec is not None:
            raise ValidationError(node.lineno, "f-string conversions and format specs are not allowed")
        self.check(node.value, depth + 1)

    def _check_Dict(self, node: ast.Dict, depth: int) -> None:
        if any(key is None for key in node.keys):
            raise ValidationError(node.lineno, "dict unpacking '**' is not allowed")
        self._children([*node.keys, *node.values], depth)

    def _check_For(self, node: ast.For, depth: int) -> None:
        if node.orelse:
            raise ValidationError(node.lineno, "for/else is not allowed")
        self._check_target(node.target)
        self._children([node.iter, *node.body], depth)

    def _check_While(self, node: ast.While, depth: int) -> None:
        if node.orelse:
            raise ValidationError(node.lineno, "while/else is not allowed")
        self._children([node.test, *node.body], depth)

    def _check_target(self, target: ast.expr) -> None:
        if isinstance(target, ast.Tuple | ast.List):
            for item in target.elts:
                self._check_target(item)
        elif not isinstance(target, ast.Name | ast.Subscript):
            raise ValidationError(target.lineno, "can only assign to names, subscripts and tuples of those")

    def _check_Assign(self, node: ast.Assign, depth: int) -> None:
        for target in node.targets:
            self._check_target(target)
        self._children([*node.targets, node.value], depth)

    def _check_AugAssign(self, node: ast.AugAssign, depth: int) -> None:
        if not isinstance(node.target, ast.Name | ast.Subscript):
            raise ValidationError(node.lineno, "augmented assignment needs a name or subscript")
        self._children([node.target, node.op, node.value], depth)

    def _check_AnnAssign(self, node: ast.AnnAssign, depth: int) -> None:
        if not isinstance(node.target, ast.Name) or node.value is None:
            raise ValidationError(node.lineno, "annotated assignment needs a name and a value")
        # The annotation is never evaluated; it is checked only so nothing can hide in it.
        _annotation(node.annotation, allow_none=True)
        self._children([node.target, node.value], depth)

    def _check_Delete(self, node: ast.Delete, depth: int) -> None:
        if not all(isinstance(t, ast.Subscript) for t in node.targets):
            raise ValidationError(node.lineno, "del only removes list items or dict keys (del x[k])")
        self._children(node.targets, depth)


def _annotation(node: ast.expr | None, allow_none: bool) -> str | None:
    if node is None:
        return None
    if isinstance(node, ast.Constant) and node.value is None and allow_none:
        return "None"
    if isinstance(node, ast.Name) and (node.id in ABI_TYPES or (allow_none and node.id == "tuple")):
        return node.id
    raise ValidationError(node.lineno, f"annotation must be one of {', '.join(ABI_TYPES)}")


def _signature(fn: ast.FunctionDef) -> Function:
    args = fn.args
    if fn.decorator_list:
        raise ValidationError(fn.lineno, "decorators are not allowed")
    if args.posonlyargs or args.vararg or args.kwonlyargs or args.kwarg:
        raise ValidationError(fn.lineno, "only plain positional parameters are allowed")
    if args.defaults:
        raise ValidationError(fn.lineno, "default parameter values are not allowed")
    if _is_dunder(fn.name):
        raise ValidationError(fn.lineno, f"dunder name '{fn.name}' is not allowed")
    if fn.name == CTX or fn.name in BUILTIN_NAMES or fn.name in FORBIDDEN_NAMES:
        raise ValidationError(fn.lineno, f"function name '{fn.name}' is reserved")
    public = not fn.name.startswith("_")
    annotations: list[str | None] = []
    for arg in args.args:
        kind = _annotation(arg.annotation, allow_none=not public)
        if public and kind is None:
            raise ValidationError(
                arg.lineno,
                f"parameter '{arg.arg}' of public function '{fn.name}' needs a type ({', '.join(ABI_TYPES)})",
            )
        annotations.append(kind)
    _annotation(fn.returns, allow_none=True)
    return Function(fn.name, tuple(a.arg for a in args.args), tuple(annotations), fn)


def compile_contract(source: str, limits: Limits = DEFAULT_LIMITS) -> Program:
    """Check `source` and return its `Program`, or raise `ValidationError` naming the line and the reason."""
    try:
        raw = source.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(0, "source is not valid Unicode text") from None
    if len(raw) > limits.max_source_bytes:
        raise ValidationError(0, f"source is {len(raw)} bytes, above the {limits.max_source_bytes}-byte limit")
    try:
        tree = ast.parse(source, mode="exec")
    except SyntaxError as exc:
        raise ValidationError(exc.lineno or 0, f"syntax error: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError):
        raise ValidationError(0, "source cannot be parsed") from None
    functions: dict[str, Function] = {}
    constants: dict[str, Any] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef):
            if stmt.name in functions or stmt.name in constants:
                raise ValidationError(stmt.lineno, f"'{stmt.name}' is defined twice")
            functions[stmt.name] = _signature(stmt)
        elif isinstance(stmt, ast.Assign | ast.AnnAssign):
            target = stmt.targets[0] if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else None
            target = stmt.target if isinstance(stmt, ast.AnnAssign) else target
            if not isinstance(target, ast.Name) or stmt.value is None:
                raise ValidationError(stmt.lineno, "a module-level assignment must bind one name to a literal")
            name = target.id
            if _is_dunder(name) or name == CTX or name in BUILTIN_NAMES or name in FORBIDDEN_NAMES:
                raise ValidationError(stmt.lineno, f"constant name '{name}' is reserved")
            if name in functions or name in constants:
                raise ValidationError(stmt.lineno, f"'{name}' is defined twice")
            constants[name] = _literal(stmt.value, limits)
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and type(stmt.value.value) is str:
            continue  # a docstring
        elif type(stmt) in _FORBIDDEN and type(stmt) is not ast.FunctionDef:
            raise ValidationError(stmt.lineno, _FORBIDDEN[type(stmt)])
        else:
            raise ValidationError(stmt.lineno, "only functions, constants and docstrings are allowed at module level")
    arity = {name: len(fn.params) for name, fn in functions.items()}
    for fn in functions.values():
        checker = _FunctionChecker(fn.node, arity, set(constants), limits)
        for stmt in fn.node.body:
            checker.check(stmt, 1)
    code_hash = hashlib.sha256(raw).digest()
    mutable = frozenset(name for name, value in constants.items() if _holds_mutable(value))
    return Program(source, code_hash, functions, constants, mutable)


def _holds_mutable(value: Any) -> bool:
    if type(value) is list or type(value) is dict:
        return True
    return type(value) is tuple and any(_holds_mutable(item) for item in value)
