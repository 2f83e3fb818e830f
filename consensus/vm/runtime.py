"""Deploy, call and view: the VM's entry points for the ledger and the node.

Every entry point returns a `Receipt`; nothing a contract or a caller does escapes as a host exception. A
transaction (deploy or call) runs inside one storage snapshot: on any failure the snapshot is reverted, so a
failed call leaves no state change and no events, and the receipt still says how much gas the sender pays.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from consensus.vm.context import BlockInfo, Caller, CallHost
from consensus.vm.errors import CallError, ExecutionError, ValidationError
from consensus.vm.gas import DEFAULT_LIMITS, DEFAULT_SCHEDULE, GasSchedule, Limits, Meter
from consensus.vm.interpreter import Interpreter, node_costs
from consensus.vm.names import INIT
from consensus.vm.program import Program
from consensus.vm.receipts import OK, Event, Receipt
from consensus.vm.storage import ADDRESS_BYTES, ReadOnlyStorage, Storage, code_key, meta_key, name_key
from consensus.vm.validator import compile_contract
from consensus.vm.values import decode_value, encode_value, fits_abi_type
from primitives import codec
from primitives.keys import address_of

CONTRACT_DOMAIN = b"ehrnet/contract/v1"
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,31}")
DEFAULT_VIEW_GAS = 2_000_000

# Host faults that should be impossible after the VM's own checks; if one slips through it must still end the
# call the same way on every node instead of crashing it.
_HOST_FAULTS = (
    TypeError,
    ValueError,
    KeyError,
    IndexError,
    AttributeError,
    ZeroDivisionError,
    OverflowError,
    UnicodeError,
    RecursionError,
)


def contract_address(deployer: bytes, code_hash: bytes, salt: int = 0) -> bytes:
    """Address of a contract: sha256(domain ‖ deployer address ‖ sha256(source) ‖ salt)[:20] (docs/VM.md)."""
    return hashlib.sha256(CONTRACT_DOMAIN + deployer + code_hash + salt.to_bytes(8, "big")).digest()[:ADDRESS_BYTES]


def _message(exc: ExecutionError | ValidationError) -> str:
    if isinstance(exc, ExecutionError) and exc.line:
        return f"line {exc.line}: {exc}"
    return str(exc)


class VM:
    """A contract VM with one gas schedule and one set of limits. Holds only a cache of validated programs
    (keyed by code hash), so two instances given the same inputs produce the same receipts and state."""

    def __init__(
        self, schedule: GasSchedule = DEFAULT_SCHEDULE, limits: Limits = DEFAULT_LIMITS, cache_size: int = 256
    ) -> None:
        self.schedule = schedule
        self.limits = limits
        self._costs = node_costs(schedule)
        self._cache: OrderedDict[bytes, Program] = OrderedDict()
        self._cache_size = cache_size

    # --- programs ---------------------------------------------------------------------------------------------

    def compile(self, source: str) -> Program:
        """Validate `source` (raises `ValidationError`), memoised by the hash of its bytes."""
        key = hashlib.sha256(source.encode("utf-8", "surrogatepass")).digest()
        program = self._cache.get(key)
        if program is None:
            program = compile_contract(source, self.limits)
            self._cache[key] = program
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return program

    def resolve(self, state: Storage, target: str | bytes) -> bytes:
        """The address of a contract named by address (20 bytes) or well-known name; `CallError` if none."""
        if isinstance(target, str):
            address = state.get(name_key(target)) if NAME_PATTERN.fullmatch(target) else None
            if address is None:
                raise CallError(f"no contract named {target!r}")
            return address
        if len(target) != ADDRESS_BYTES or state.get(code_key(target)) is None:
            raise CallError(f"no contract at {target.hex()}")
        return target

    def load(self, state: Storage, target: str | bytes) -> tuple[bytes, Program]:
        address = self.resolve(state, target)
        code = state.get(code_key(address))
        if code is None:
            raise CallError(f"no contract at {address.hex()}")
        try:
            return address, self.compile(code.decode("utf-8"))
        except (UnicodeDecodeError, ValidationError):
            raise CallError(f"stored code at {address.hex()} is not a valid contract") from None

    def abi(self, state: Storage, target: str | bytes) -> codec.Value:
        """The ABI of a deployed contract (`CallError` if there is none)."""
        address, program = self.load(state, target)
        abi = program.abi()
        assert isinstance(abi, dict)
        return {**abi, "address": address}

    # --- entry points -----------------------------------------------------------------------------------------

    def deploy(
        self,
        state: Storage,
        deployer_pk: bytes,
        source: str,
        init_args: Sequence[codec.Value] = (),
        *,
        block: BlockInfo,
        gas_limit: int,
        salt: int = 0,
        name: str | None = None,
    ) -> Receipt:
        """Store `source` as a new contract and run its `init(*init_args)`; `return_value` is the address."""
        meter = Meter(max(gas_limit, 0), self.schedule, self.limits)  # a negative limit runs out at once
        events: list[Event] = []
        deployer = address_of(deployer_pk)
        snapshot = state.snapshot()
        address: bytes | None = None
        try:
            raw = source.encode("utf-8", "surrogatepass")
            meter.charge(self.schedule.deploy_base + self.schedule.deploy_byte * len(raw))
            program = self.compile(source)
            if not 0 <= salt < 2**64:
                raise CallError("the salt must fit in 64 unsigned bits")
            address = contract_address(deployer, program.code_hash, salt)
            if state.get(code_key(address)) is not None:
                raise CallError(f"a contract already exists at {address.hex()}; use another salt")
            if name is not None:
                if not NAME_PATTERN.fullmatch(name):
                    raise CallError("contract names are 1-32 of a-z, 0-9, '_' and '-', starting with a letter")
                if state.get(name_key(name)) is not None:
                    raise CallError(f"the name {name!r} is taken")
                state.set(name_key(name), address)
            state.set(code_key(address), raw)
            meta: codec.Value = {"deployer": deployer, "code_hash": program.code_hash, "name": name}
            state.set(meta_key(address), codec.encode(meta))
            caller = Caller(deployer, deployer_pk, deployer)
            if program.init is not None:
                self._run(state, meter, events, address, program, INIT, list(init_args), caller, block, False, True)
            elif init_args:
                raise CallError("the contract has no init() to take arguments")
        except ValidationError as exc:
            state.revert(snapshot)
            return Receipt("invalid", meter.used, _message(exc))
        except ExecutionError as exc:
            state.revert(snapshot)
            return Receipt(exc.status, meter.used, _message(exc), address=address)
        except _HOST_FAULTS as exc:
            state.revert(snapshot)
            return Receipt("failed", meter.used, f"internal fault: {type(exc).__name__}", address=address)
        state.commit(snapshot)
        return Receipt(OK, meter.used, None, address, tuple(events), address)

    def call(
        self,
        state: Storage,
        sender_pk: bytes,
        target: str | bytes,
        func: str,
        args: Sequence[codec.Value],
        *,
        block: BlockInfo,
        gas_limit: int,
    ) -> Receipt:
        """A transaction signed by `sender_pk` calling `target.func(*args)`; state changes only if status is ok."""
        sender = address_of(sender_pk)
        return self._transact(state, Caller(sender, sender_pk, sender), target, func, args, block, gas_limit, False)

    def view(
        self,
        state: Storage,
        target: str | bytes,
        func: str,
        args: Sequence[codec.Value],
        *,
        block: BlockInfo,
        caller_pk: bytes = b"",
        gas_limit: int = DEFAULT_VIEW_GAS,
    ) -> Receipt:
        """Evaluate a function without a transaction: any storage write or event makes it fail ("failed")."""
        caller = Caller(address_of(caller_pk) if caller_pk else b"", caller_pk, b"")
        return self._transact(ReadOnlyStorage(state.get), caller, target, func, args, block, gas_limit, True)

    def _transact(
        self,
        state: Storage,
        caller: Caller,
        target: str | bytes,
        func: str,
        args: Sequence[codec.Value],
        block: BlockInfo,
        gas_limit: int,
        read_only: bool,
    ) -> Receipt:
        meter = Meter(max(gas_limit, 0), self.schedule, self.limits)  # a negative limit runs out at once
        events: list[Event] = []
        snapshot = state.snapshot()
        address: bytes | None = None
        try:
            meter.charge(self.schedule.call_base)
            address, program = self.load(state, target)
            result = self._run(state, meter, events, address, program, func, list(args), caller, block, read_only)
        except ExecutionError as exc:
            state.revert(snapshot)
            return Receipt(exc.status, meter.used, _message(exc), address=address)
        except _HOST_FAULTS as exc:
            state.revert(snapshot)
            return Receipt("failed", meter.used, f"internal fault: {type(exc).__name__}", address=address)
        state.commit(snapshot)
        return Receipt(OK, meter.used, None, result, tuple(events), address)

    def _run(
        self,
        state: Storage,
        meter: Meter,
        events: list[Event],
        address: bytes,
        program: Program,
        func: str,
        args: list[Any],
        caller: Caller,
        block: BlockInfo,
        read_only: bool,
        constructor: bool = False,
    ) -> codec.Value:
        """Check `args` against the ABI, run the function, and return its result as a canonical value."""
        fn = program.functions.get(func)
        if fn is None or not (fn.public or (constructor and func == INIT)):
            raise CallError(f"the contract has no public function {func!r}")
        if len(args) != len(fn.params):
            raise CallError(f"{func}() takes {len(fn.params)} arguments, got {len(args)}")
        for param, kind, value in zip(fn.params, fn.annotations, args, strict=True):
            if kind is not None and not fits_abi_type(value, kind):
                raise CallError(f"argument {param!r} of {func}() must be {kind}")
        limits = self.limits
        meter.walk_to_encode(args)
        encoded = encode_value(args, limits.max_weight, limits.max_value_bytes, "call arguments")
        meter.charge(self.schedule.arg_byte * len(encoded))
        fresh = decode_value(encoded, "call arguments")  # the callee gets its own copy: no aliasing
        assert isinstance(fresh, list)

        def nested(host: CallHost, target: Any, inner: str, inner_args: list[Any]) -> Any:
            inner_address, inner_program = self.load(state, target)
            inner_caller = Caller(host.address, b"", host.caller.origin)
            return self._run(
                state, meter, events, inner_address, inner_program, inner, inner_args, inner_caller, block, read_only
            )

        host = CallHost(
            state=state,
            meter=meter,
            address=address,
            caller=caller,
            block=block,
            read_only=read_only,
            events=events,
            nested_call=nested,
        )
        result = Interpreter(program, host, meter, self._costs).invoke(fn, fresh)
        meter.walk_to_encode(result)
        data = encode_value(result, limits.max_weight, limits.max_return_bytes, "return value")
        meter.charge(self.schedule.arg_byte * len(data))
        return decode_value(data, "return value")  # type: ignore[no-any-return]
