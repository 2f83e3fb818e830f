"""Arithmetic, comparison and membership with the VM's size rules.

Integers stay within `Limits.max_int_bits`; results that would exceed a bound are refused *before* the host
computes them where the size is predictable (repetition, concatenation, powers, shifts), so a single step costs at
most a bounded amount of work, and the gas charged grows with operand size (gas.py).
"""

from __future__ import annotations

import ast
from typing import Any

from consensus.vm.builtins import check_int, check_text, has_key
from consensus.vm.errors import ContractError, LimitExceeded
from consensus.vm.gas import Meter
from consensus.vm.values import SLOT_BYTES, type_name

_SYMBOL: dict[type, str] = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**",
    ast.LShift: "<<", ast.RShift: ">>", ast.BitOr: "|", ast.BitXor: "^", ast.BitAnd: "&",
    ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
}  # fmt: skip

_INTS = (int, bool)
_TEXT = (str, bytes)
_SEQ = (list, tuple)


def _unsupported(op: ast.AST, left: Any, right: Any) -> ContractError:
    symbol = _SYMBOL.get(type(op), type(op).__name__)
    return ContractError(f"unsupported operand types for {symbol}: {type_name(left)} and {type_name(right)}")


def _int_op(meter: Meter, op: ast.operator, a: int, b: int) -> int:
    bits = meter.limits.max_int_bits
    width = max(a.bit_length(), b.bit_length())
    if width > 64:  # machine-word operands are covered by the node's own cost
        meter.charge_size(width // 2, "int")
    kind = type(op)
    if kind is ast.Add or kind is ast.Sub:
        result = a + b if kind is ast.Add else a - b
        if result.bit_length() > bits:
            raise LimitExceeded(f"integer wider than {bits} bits")
        return result
    if kind is ast.Mult:
        return check_int(meter, a * b)
    if kind is ast.FloorDiv or kind is ast.Mod:
        if b == 0:
            raise ContractError("integer division or modulo by zero")
        return a // b if kind is ast.FloorDiv else a % b
    if kind is ast.Pow:
        if b < 0:
            raise ContractError("negative exponent (would give a float)")
        if abs(a) > 1 and (abs(a).bit_length() - 1) * b > bits:
            raise LimitExceeded(f"integer wider than {bits} bits")
        return check_int(meter, a**b)
    if kind is ast.LShift or kind is ast.RShift:
        if b < 0:
            raise ContractError("negative shift count")
        if kind is ast.RShift:
            return a >> min(b, bits + 1)
        if a != 0 and a.bit_length() + b > bits:
            raise LimitExceeded(f"integer wider than {bits} bits")
        return a << b
    if kind is ast.BitOr:
        return a | b
    if kind is ast.BitXor:
        return a ^ b
    if kind is ast.BitAnd:
        return a & b
    raise _unsupported(op, a, b)


def _repeat(meter: Meter, seq: Any, times: int) -> Any:
    count = max(0, times)
    if type(seq) in _TEXT:
        check_text(meter, len(seq) * count)
    else:
        if len(seq) * count > meter.limits.max_container_len:
            raise LimitExceeded(f"more than {meter.limits.max_container_len} items")
        meter.alloc(SLOT_BYTES * len(seq) * count)
    return seq * count


def binary(meter: Meter, op: ast.operator, left: Any, right: Any) -> Any:
    ta, tb = type(left), type(right)
    if ta is int and tb is int:
        return _int_op(meter, op, left, right)
    if ta in _INTS and tb in _INTS:
        if type(op) in (ast.BitOr, ast.BitXor, ast.BitAnd) and ta is bool and tb is bool:
            return _int_op(meter, op, left, right) == 1  # bool & bool stays a bool, as in Python
        return _int_op(meter, op, int(left), int(right))
    kind = type(op)
    if kind is ast.Add and ta is tb and (ta in _TEXT or ta in _SEQ):
        if ta in _TEXT:
            check_text(meter, len(left) + len(right))
        else:
            if len(left) + len(right) > meter.limits.max_container_len:
                raise LimitExceeded(f"more than {meter.limits.max_container_len} items")
            meter.alloc(SLOT_BYTES * (len(left) + len(right)))
        return left + right
    if kind is ast.Mult:
        if (ta in _TEXT or ta in _SEQ) and tb in _INTS:
            return _repeat(meter, left, int(right))
        if ta in _INTS and (tb in _TEXT or tb in _SEQ):
            return _repeat(meter, right, int(left))
    raise _unsupported(op, left, right)


def unary(meter: Meter, op: ast.unaryop, operand: Any) -> Any:
    kind = type(op)
    if kind is ast.Not:
        return not truth(operand)
    if type(operand) not in _INTS:
        raise ContractError(f"bad operand type for unary operator: {type_name(operand)}")
    meter.charge_size(operand.bit_length() // 2, "int")
    if kind is ast.USub:
        return check_int(meter, -operand)
    if kind is ast.UAdd:
        return int(operand)
    return check_int(meter, ~operand)


def truth(value: Any) -> bool:
    kind = type(value)
    if kind is bool:
        return value  # type: ignore[no-any-return]
    if kind is int:
        return bool(value != 0)
    if value is None:
        return False
    return bool(len(value) > 0)


def _deep_cost(meter: Meter, left: Any, right: Any) -> None:
    """Comparisons of containers walk them: charge by weight (bounded) before the host does."""
    ta, tb = type(left), type(right)
    if ta in _TEXT or tb in _TEXT:
        meter.charge_size(min(len(left) if ta in _TEXT else 0, len(right) if tb in _TEXT else 0), "text")
    elif ta in (list, tuple, dict) or tb in (list, tuple, dict):
        meter.charge_size(meter.walk(left) + meter.walk(right), "compare")


def _ordering_ok(left: Any, right: Any) -> bool:
    ta, tb = type(left), type(right)
    if ta in _INTS and tb in _INTS:
        return True
    return ta is tb and ta in (str, bytes, list, tuple)


def compare(meter: Meter, op: ast.cmpop, left: Any, right: Any) -> bool:
    kind = type(op)
    if kind is ast.Is:
        return left is right  # the validator allows `is` only against None/True/False singletons
    if kind is ast.IsNot:
        return left is not right
    if kind is ast.In or kind is ast.NotIn:
        return contains(meter, right, left) == (kind is ast.In)
    _deep_cost(meter, left, right)
    try:
        if kind is ast.Eq:
            return bool(left == right)
        if kind is ast.NotEq:
            return bool(left != right)
        if not _ordering_ok(left, right):
            raise _unsupported(op, left, right)
        if kind is ast.Lt:
            return bool(left < right)
        if kind is ast.LtE:
            return bool(left <= right)
        if kind is ast.Gt:
            return bool(left > right)
        return bool(left >= right)
    except TypeError:
        # Lists of mixed element types: the host cannot order them, and neither can the contract.
        raise _unsupported(op, left, right) from None


def contains(meter: Meter, container: Any, item: Any) -> bool:
    kind = type(container)
    if kind is dict:
        return has_key(meter, container, item)
    if kind in _TEXT:
        if type(item) is not kind:
            raise ContractError(f"'in <{type_name(container)}>' needs a {type_name(container)} on the left")
        meter.charge_size(len(container) + len(item), "text")
        return item in container
    if kind in _SEQ:
        meter.charge_size(meter.walk(container) + meter.walk(item), "compare")
        return item in container
    raise ContractError(f"argument of type {type_name(container)} is not a container")
