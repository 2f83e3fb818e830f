"""`ctx`: what a running contract may ask of the world — who called, which block, its storage, events, and
other contracts. One `CallHost` per contract frame; nested calls get their own with the caller set to the
calling contract (docs/VM.md "ctx").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from consensus.vm.builtins import arity, want
from consensus.vm.errors import ContractError, LimitExceeded, WriteInView
from consensus.vm.gas import Meter
from consensus.vm.receipts import Event
from consensus.vm.storage import Storage, storage_key
from consensus.vm.values import decode_value, encode_value


@dataclass(frozen=True)
class BlockInfo:
    """The block a transaction executes in; `time` is the block's timestamp in whole seconds (never wall clock)."""

    height: int
    time: int


@dataclass(frozen=True)
class Caller:
    """Who is calling: a transaction's signer (`pk` set) or, inside a nested call, a contract (`pk` empty)."""

    address: bytes
    pk: bytes
    origin: bytes  # the address that signed the transaction at the root of the call chain


# Runs `func(args)` on contract `target` on behalf of the calling frame; supplied by the runtime.
NestedCall = Callable[["CallHost", Any, str, list[Any]], Any]


class CallHost:
    def __init__(
        self,
        *,
        state: Storage,
        meter: Meter,
        address: bytes,
        caller: Caller,
        block: BlockInfo,
        read_only: bool,
        events: list[Event],
        nested_call: NestedCall,
    ) -> None:
        self.state = state
        self.meter = meter
        self.address = address
        self.caller = caller
        self.block = block
        self.read_only = read_only
        self.events = events
        self._nested_call = nested_call

    def field(self, name: str) -> Any:
        if name == "caller":
            return self.caller.address
        if name == "caller_pk":
            return self.caller.pk
        if name == "origin":
            return self.caller.origin
        if name == "address":
            return self.address
        if name == "height":
            return self.block.height
        if name == "time":
            return self.block.time
        raise ContractError(f"ctx has no field '{name}'")

    def method(self, name: str, args: list[Any]) -> Any:
        handler = _METHODS.get(name)
        if handler is None:
            raise ContractError(f"ctx has no method '{name}'")
        return handler(self, args)

    def _key(self, key: Any) -> bytes:
        want("ctx storage key", key, str, bytes)
        raw = key.encode("utf-8") if type(key) is str else key
        if not 0 < len(raw) <= self.meter.limits.max_key_bytes:
            raise LimitExceeded(f"storage keys are 1 to {self.meter.limits.max_key_bytes} bytes")
        return storage_key(self.address, raw)

    def _writable(self, what: str) -> None:
        if self.read_only:
            raise WriteInView(f"{what} is not allowed in a read-only view")

    def get(self, args: list[Any]) -> Any:
        arity("ctx.get", args, 1, 2)
        key = self._key(args[0])
        data = self.state.get(key)
        schedule = self.meter.schedule
        self.meter.charge(schedule.storage_read + schedule.storage_read_byte * (len(key) + len(data or b"")))
        if data is None:
            return args[1] if len(args) == 2 else None
        self.meter.alloc(len(data))
        return decode_value(data, "stored value")

    def has(self, args: list[Any]) -> bool:
        arity("ctx.has", args, 1, 1)
        key = self._key(args[0])
        self.meter.charge(self.meter.schedule.storage_read + self.meter.schedule.storage_read_byte * len(key))
        return self.state.get(key) is not None

    def set(self, args: list[Any]) -> None:
        arity("ctx.set", args, 2, 2)
        self._writable("ctx.set")
        key = self._key(args[0])
        limits, schedule = self.meter.limits, self.meter.schedule
        self.meter.walk_to_encode(args[1])
        data = encode_value(args[1], limits.max_weight, limits.max_value_bytes, "stored value")
        self.meter.charge(schedule.storage_write + schedule.storage_write_byte * (len(key) + len(data)))
        self.state.set(key, data)

    def delete(self, args: list[Any]) -> None:
        arity("ctx.delete", args, 1, 1)
        self._writable("ctx.delete")
        key = self._key(args[0])
        self.meter.charge(self.meter.schedule.storage_delete)
        self.state.delete(key)

    def emit(self, args: list[Any]) -> None:
        arity("ctx.emit", args, 2, 2)
        self._writable("ctx.emit")
        name, data = args
        want("ctx.emit name", name, str)
        limits, schedule = self.meter.limits, self.meter.schedule
        if not 0 < len(name) <= 64:
            raise ContractError("event names are 1 to 64 characters")
        if len(self.events) >= limits.max_events:
            raise LimitExceeded(f"more than {limits.max_events} events in one transaction")
        self.meter.walk_to_encode(data)
        encoded = encode_value(data, limits.max_weight, limits.max_event_bytes, "event data")
        self.meter.charge(schedule.event_base + schedule.event_byte * (len(name) + len(encoded)))
        self.events.append(Event(self.address, name, decode_value(encoded, "event data")))

    def call(self, args: list[Any]) -> Any:
        arity("ctx.call", args, 3, 3)
        target, func, call_args = args
        want("ctx.call contract", target, str, bytes)
        want("ctx.call function", func, str)
        want("ctx.call arguments", call_args, list, tuple)
        self.meter.charge(self.meter.schedule.cross_call)
        return self._nested_call(self, target, func, list(call_args))


_METHODS: dict[str, Callable[[CallHost, list[Any]], Any]] = {
    "get": CallHost.get,
    "has": CallHost.has,
    "set": CallHost.set,
    "delete": CallHost.delete,
    "emit": CallHost.emit,
    "call": CallHost.call,
}
