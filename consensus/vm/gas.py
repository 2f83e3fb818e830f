"""Gas: the cost table, the size bounds and the meter that enforces both.

Rules as data (docs/ARCHITECTURE.md §5): every charge the interpreter makes is looked up here, never written as a
literal in a branch, after py-evm's opcode table + `GasMeter` split. Calibration: one unit of gas is meant to be
about 100 ns of interpreter time in the worst case, a tight loop of cheap nodes, on the reference machine (2-core
VM, Python 3.11; `bench/gas.py` reports the measured ratio), so a call's gas limit bounds the CPU time a node
spends on it; `bench/vm_calibration.py` checks every operation class against it (docs/VM.md "Calibration").
Storage-heavy calls run well under 100 ns per gas because storage prices also pay for state growth and for
hashing the authenticated state tree, which the in-memory bench does not do.

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
from consensus.vm.values import weigh


def _frozen(table: dict[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(table))


# Gas for evaluating one AST node, by node class name. Loops also pay `loop_iteration` per turn.
NODE_COSTS: Mapping[str, int] = _frozen(
    {
        "Constant": 2,
        "Name": 2,
        "Attribute": 4,
        "Subscript": 6,
        "Slice": 4,
        "BinOp": 6,
        "UnaryOp": 4,
        "BoolOp": 4,
        "Compare": 6,
        "IfExp": 4,
        "Call": 10,
        "List": 6,
        "Tuple": 6,
        "Dict": 8,
        "ListComp": 10,
        "GeneratorExp": 10,
        "DictComp": 10,
        "JoinedStr": 6,
        "FormattedValue": 4,
        "Expr": 2,
        "Assign": 4,
        "AugAssign": 6,
        "AnnAssign": 4,
        "Return": 2,
        "If": 2,
        "For": 4,
        "While": 2,
        "Break": 2,
        "Continue": 2,
        "Pass": 2,
        "Assert": 4,
        "Delete": 6,
    }
)

# Base gas per builtin function or method call (sizes are charged on top through `Meter.charge_size`).
BUILTIN_COSTS: Mapping[str, int] = _frozen(
    {
        "len": 4,
        "range": 10,
        "min": 10,
        "max": 10,
        "abs": 4,
        "str": 10,
        "int": 10,
        "bytes": 10,
        "bool": 4,
        "list": 10,
        "tuple": 10,
        "dict": 10,
        "sorted": 20,
        "reversed": 10,
        "enumerate": 10,
        "zip": 10,
        "sum": 10,
        "any": 6,
        "all": 6,
        "hex": 10,
        "fromhex": 10,
        "sha256": 60,
        "address_of": 120,
        "type_name": 4,
        "revert": 2,
        "method": 8,
    }
)


# The classes of size-proportional step: "compare" (deep ==, <, in, index/count/remove on containers), "text"
# (str/bytes methods and `in` on text, by length), "translate" (ASCII case mapping and whitespace splitting, which
# go through a per-character table), "hash" (sha256, fromhex), "sort" (sorted, list.sort, min, max: weight ×
# log2 n), "scan" (any, all, sum: a host loop in Python per item), "shift" (insert, pop, reverse, del: a memmove),
# "items" (per-item checks and objects: join, split, bytes(list), dict(pairs)), "int" (integers wider than 64
# bits). Version 1 knows neither "translate" nor "items" (free there).
WORD_CLASSES_V1: Mapping[str, int] = _frozen(
    {"compare": 1, "text": 1, "hash": 1, "sort": 1, "scan": 1, "shift": 1, "int": 1}
)


@dataclass(frozen=True)
class GasSchedule:
    """Every price the VM charges. Defaults are the network's; a test may pass its own."""

    nodes: Mapping[str, int] = field(default_factory=lambda: NODE_COSTS)
    builtins: Mapping[str, int] = field(default_factory=lambda: BUILTIN_COSTS)
    loop_iteration: int = 5
    function_call: int = 40  # entering a contract function: a new frame
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
    # Multipliers on `word` per class of size-proportional step (`Meter.charge_size`); a class missing from the
    # table is free (version 1 has no "translate" charge). Version 1 prices every class it knows alike.
    word_classes: Mapping[str, int] = field(default_factory=lambda: WORD_CLASSES_V1)
    # Gas per 32 nodes a deep walk visits (`Meter.walk`), charged as it is bounded, failed walks included.
    # 0 (version 1) leaves walks uncharged: their callers then charge by the weight they return.
    walk_word: int = 0


@dataclass(frozen=True)
class Limits:
    """Hard size bounds: exceeding one ends the call with `LimitExceeded`, whatever gas is left."""

    max_int_bits: int = 256
    max_str_len: int = 65_536  # characters of a str, bytes of a bytes
    max_container_len: int = 16_384  # items in one list, tuple or dict
    max_memory: int = 8 * 1024 * 1024  # bytes allocated per transaction, all frames together
    max_weight: int = 200_000  # nodes visited by one deep operation (compare, str, encode)
    # Frames and nesting together bound the host stack the interpreter uses: about 2 host frames per nesting
    # level per contract frame, so 12 × (2 × 20 + 8) ≈ 600 frames, well inside Python's default limit of 1000.
    max_call_depth: int = 12  # contract function frames plus cross-contract calls
    max_nesting: int = 20  # AST depth of a statement or expression (and of constant literals), checked at deploy
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

    def charge_size(self, units: int, kind: str) -> None:
        """Charge a size-proportional step of class `kind`: `units` bytes, slots or bits, priced per 32."""
        self.charge(self.schedule.word * self.schedule.word_classes.get(kind, 0) * (1 + units // 32))

    def walk(self, value: object) -> int:
        """The weight of `value` (values.weigh), bounded by `Limits.max_weight` and, when walks are priced, by
        the gas left: the walk is charged for the nodes it visits, and a walk that hits either bound is charged
        for the whole bound it was allowed, so a failed deep operation costs what it made the node do."""
        price = self.schedule.walk_word
        if price == 0:
            return weigh(value, self.limits.max_weight)
        affordable = (self.remaining // price + 1) * 32
        budget = min(self.limits.max_weight, affordable)
        try:
            weight = weigh(value, budget)
        except LimitExceeded:
            self.charge(price * (1 + budget // 32))
            raise
        self.charge(price * (1 + weight // 32))
        return weight

    def walk_to_encode(self, value: object) -> None:
        """Before encoding `value` (storage, events, call boundaries): charge its walk where walks are priced.
        Encoding walks and serialises the whole value before its size limit can refuse it; version 1 left that
        uncharged (and its receipts must stay as they were), so there this does nothing."""
        if self.schedule.walk_word:
            self.walk(value)

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
