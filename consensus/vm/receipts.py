"""Events and receipts: what a call leaves behind, in canonical form so blocks can commit to them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from consensus.vm.errors import ReceiptFormatError
from primitives import codec

OK = "ok"


@dataclass(frozen=True)
class Event:
    """`ctx.emit(name, data)` by the contract at `contract`."""

    contract: bytes
    name: str
    data: codec.Value

    def to_value(self) -> codec.Value:
        return {"contract": self.contract, "name": self.name, "data": self.data}

    @classmethod
    def from_value(cls, value: codec.Value) -> Event:
        if not isinstance(value, dict):
            raise ReceiptFormatError("an event is a map")
        contract, name = value.get("contract"), value.get("name")
        if not isinstance(contract, bytes) or not isinstance(name, str):
            raise ReceiptFormatError("an event needs bytes 'contract' and str 'name'")
        return cls(contract, name, value.get("data"))


@dataclass(frozen=True)
class Receipt:
    """The outcome of a deploy, call or view. `status` is "ok", "reverted", "out_of_gas", "failed" or "invalid"
    (deploy of a source the validator rejects); on any status but "ok" no state change survives and `events` is
    empty. The sender pays `gas_used` whatever the status."""

    status: str
    gas_used: int
    error: str | None = None
    return_value: codec.Value = None
    events: tuple[Event, ...] = field(default=())
    address: bytes | None = None  # the contract deployed or called

    @property
    def ok(self) -> bool:
        return self.status == OK

    def to_value(self) -> codec.Value:
        return {
            "status": self.status,
            "gas_used": self.gas_used,
            "error": self.error,
            "return": self.return_value,
            "events": [event.to_value() for event in self.events],
            "address": self.address,
        }

    @classmethod
    def from_value(cls, value: codec.Value) -> Receipt:
        if not isinstance(value, dict):
            raise ReceiptFormatError("a receipt is a map")
        status, gas, error, events = value.get("status"), value.get("gas_used"), value.get("error"), value.get("events")
        address = value.get("address")
        if not isinstance(status, str) or not isinstance(gas, int) or not isinstance(events, list):
            raise ReceiptFormatError("a receipt needs str 'status', int 'gas_used' and a list of 'events'")
        if not isinstance(error, str | None) or not isinstance(address, bytes | None):
            raise ReceiptFormatError("receipt 'error' must be str or null and 'address' bytes or null")
        return cls(status, gas, error, value.get("return"), tuple(Event.from_value(e) for e in events), address)


def select_events(
    events: Iterable[Event],
    contract: bytes | None = None,
    name: str | None = None,
    where: Mapping[str, codec.Value] | None = None,
) -> Iterator[Event]:
    """Events matching every given filter; `where` matches fields of a map-shaped `data` (e.g. {"patient": pk})."""
    for event in events:
        if contract is not None and event.contract != contract:
            continue
        if name is not None and event.name != name:
            continue
        if where:
            data = event.data
            if not isinstance(data, dict) or any(data.get(k) != v for k, v in where.items()):
                continue
        yield event
