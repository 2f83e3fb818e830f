"""Gas: the cost table, the size bounds and the meter that enforces both.

Rules as data (ARCHITECTURE.md §3): every charge the interpreter makes is looked up here, never written as a
literal in a branch, after py-evm's opcode table + `GasMeter` split. Calibration: one unit of gas is meant to be
about 100 ns of interpreter time on the reference machine (see `bench/gas.py`, which reports the measured ratio),
so a call's gas limit is also a bound on the CPU time a node spends on it.

Operations whose cost grows with operand size (big integers, concatenation, repetition, copying, deep
comparison, encoding) are charged by size *before* the host does the work, and the `Limits` below cap every size,
so no single step can stall a node. Memory is bounded by counting every allocation a call makes (a conservative
upper bound on what it holds live).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from consensus.vm.errors import LimitExceeded, OutOfGas


def _frozen(table: dict[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(table))


# Gas for evaluating one AST node, by node class name. Loops also pay `loop_iteration` per turn.
NODE_COSTS: Mapping[str, int] = _frozen(
    {
        "Constant": 1,
        "Name": 1,
        "Attribute": 2,
        "Subscript": 3,
        "Slice": 2,
        "BinOp": 3,
        "UnaryOp": 2,
        "BoolOp": 2,
        "Compare": 3,
        "IfExp": 2,
        "Call": 5,
        "List": 3,
        "Tuple": 3,
        "Dict": 4,
        "ListComp": 5,
        "GeneratorExp": 5,
        "DictComp": 5,
        "JoinedStr": 3,
        "FormattedValue": 2,
        "Expr": 1,
        "Assign": 2,
        "AugAssign": 3,
        "AnnAssign": 2,
        "Return": 1,
        "If": 1,
        "For": 2,
        "While": 1,
        "Break": 1,
        "Continue": 1,
        "Pass": 1,
        "Assert": 2,
        "Delete": 3,
    }
)

# Base gas per builtin function or method call (sizes are charged on top through `Meter.charge_size`).
BUILTIN_COSTS: Mapping[str, int] = _frozen(
    {
        "len": 2,
        "range": 5,
        "min": 5,
        "max": 5,
        "abs": 2,
        "str": 5,
        "int": 5,
        "bytes": 5,
        "bool": 2,
        "list": 5,
        "tuple": 5,
        "dict": 5,
        "sorted": 10,
        "reversed": 5,
        "enumerate": 5,
        "zip": 5,
        "sum": 5,
        "any": 3,
        "all": 3,
        "hex": 5,
        "fromhex": 5,
        "sha256": 60,
        "address_of": 60,
        "type_name": 2,
        "revert": 1,
        "method": 4,
    }
)


@dataclass(frozen=True)
class GasSchedule:
    """Every price the VM charges. Defaults are the network's; a test may pass its own."""

    nodes: Mapping[str, int] = field(default_factory=lambda: NODE_COSTS)
    builtins: Mapping[str, int] = field(default_factory=lambda: BUILTIN_COSTS)
    loop_iteration: int = 2
    function_call: int = 20  # entering a contract function: a new frame
    word: int = 1  # per 32 bytes (or 32 slots, or 64 integer bits) of operand size in size-proportional steps
    alloc_word: int = 1  # per 32 bytes of memory a step allocates
    call_base: int = 500  # a transaction's call: decoding, dispatch, receipt
    deploy_base: int = 5000
    deploy_byte: int = 5  # per byte of contract source stored in state
    arg_byte: int = 1  # per byte of encoded call arguments and return value
    storage_read: int = 150
    storage_read_byte: int = 1
    storage_write: int = 500
    storage_write_byte: int = 10
    storage_delete: int = 300
    event_base: int = 100
    event_byte: int = 4
    cross_call: int = 700  # ctx.call into another contract


@dataclass(frozen=True)
class Limits:
    """Hard size bounds: exceeding one ends the call with `LimitExceeded`, whatever gas is left."""

    max_int_bits: int = 256
    max_str_len: int = 65_536  # characters of a str, bytes of a bytes
    max_container_len: int = 16_384  # items in one list, tuple or dict
    max_memory: int = 8 * 1024 * 1024  # bytes allocated per transaction, all frames together
    max_weight: int = 200_000  # nodes visited by one deep operation (compare, str, encode)
    max_call_depth: int = 16  # contract function frames plus cross-contract calls
    max_nesting: int = 24  # AST depth of a statement or expression, checked at deploy
    max_source_bytes: int = 65_536
    max_key_bytes: int = 256
    max_value_bytes: int = 65_536
    max_events: int = 64
    max_event_bytes: int = 4096
    max_return_bytes: int = 65_536
    max_int_str_digits: int = 100  # int("…") parses at most this many characters


DEFAULT_SCHEDULE = GasSchedule()
DEFAULT_LIMITS = Limits()


@dataclass
class Meter:
    """Gas and memory left for one transaction, shared by every frame and nested contract call in it."""

    gas_limit: int
    schedule: GasSchedule = DEFAULT_SCHEDULE
    limits: Limits = DEFAULT_LIMITS
    remaining: int = field(init=False)
    allocated: int = field(default=0, init=False)
    depth: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.gas_limit < 0:
            raise ValueError("gas limit must not be negative")
        self.remaining = self.gas_limit

    @property
    def used(self) -> int:
        return self.gas_limit - self.remaining

    def charge(self, gas: int) -> None:
        self.remaining -= gas
        if self.remaining < 0:
            self.remaining = 0
            raise OutOfGas(f"out of gas (limit {self.gas_limit})")

    def charge_size(self, units: int) -> None:
        """Charge a size-proportional step: `units` bytes, slots or bits, priced per 32."""
        self.charge(self.schedule.word * (1 + units // 32))

    def alloc(self, size_bytes: int) -> None:
        """Account for `size_bytes` of new memory: gas now, and the per-transaction memory cap."""
        self.allocated += size_bytes
        if self.allocated > self.limits.max_memory:
            raise LimitExceeded(f"memory limit of {self.limits.max_memory} bytes exceeded")
        self.charge(self.schedule.alloc_word * (1 + size_bytes // 32))

    def enter(self) -> None:
        self.depth += 1
        if self.depth > self.limits.max_call_depth:
            self.depth -= 1
            raise LimitExceeded(f"call depth above {self.limits.max_call_depth}")

    def leave(self) -> None:
        self.depth -= 1
