"""An index of contract events, kept by the chain store beside each final block.

Audits ("who read my records"), penalty lists and a patient's records are questions about events over the whole
chain; answering them by decoding every block's receipts costs time in the chain's length, not in the answer's
size. The index holds one LMDB key per event and query family, with an empty value (the event itself stays in
its block's receipts), laid out so that one key range is one query, in chain order:

    family(1) | contract(20) | [len(name)(2) | name] | [patient(20)] | height(8) | tx index(4) | event index(2)

Families: every event of a contract; a contract's events of one name; and of one name for one patient (events
whose data is a map with a 20-byte `patient`, as the `ehr` contract's are). Heights are big-endian, so walking
a prefix backwards gives the newest events first. The index is derived data: it is rebuilt from the receipts
when missing, and never enters a hash.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from consensus.execute import Receipt
from primitives import codec

ALL, BY_NAME, BY_PATIENT = b"\x00", b"\x01", b"\x02"

# (height, index of the transaction in its block, index of the event in its receipt): an event's place in the chain.
EventPosition = tuple[int, int, int]
CONTRACT_BYTES = 20
PATIENT_BYTES = 20
POSITION_BYTES = 8 + 4 + 2


@dataclass(frozen=True)
class ContractEvent:
    """A contract's event as stored in a receipt: `Event(name, {"contract": address, "data": data})`."""

    contract: bytes
    name: str
    data: codec.Value

    @property
    def patient(self) -> bytes | None:
        patient = self.data.get("patient") if isinstance(self.data, dict) else None
        return patient if isinstance(patient, bytes) and len(patient) == PATIENT_BYTES else None


def contract_events(receipt: Receipt) -> Iterator[tuple[int, ContractEvent]]:
    """(index in the receipt, event) for each event a contract emitted; system events are skipped."""
    for index, event in enumerate(receipt.events):
        contract = event.attrs.get("contract")
        if isinstance(contract, bytes) and len(contract) == CONTRACT_BYTES and set(event.attrs) == {"contract", "data"}:
            yield index, ContractEvent(contract, event.name, event.attrs["data"])


def prefix(contract: bytes, name: str | None = None, patient: bytes | None = None) -> bytes:
    """The key prefix of one query; with a patient but no name, callers filter the contract's family."""
    if name is None:
        return ALL + contract
    label = _name_bytes(name)
    if patient is None:
        return BY_NAME + contract + label
    return BY_PATIENT + contract + label + patient


def keys_for(height: int, receipts: Sequence[Receipt]) -> Iterator[bytes]:
    """Every index key of one block's receipts."""
    for tx_index, receipt in enumerate(receipts):
        for event_index, event in contract_events(receipt):
            position = position_bytes(height, tx_index, event_index)
            yield prefix(event.contract) + position
            yield prefix(event.contract, event.name) + position
            patient = event.patient
            if patient is not None:
                yield prefix(event.contract, event.name, patient) + position


def position_of(key: bytes) -> EventPosition:
    """(height, tx index, event index) of an index key."""
    tail = key[-POSITION_BYTES:]
    return int.from_bytes(tail[:8], "big"), int.from_bytes(tail[8:12], "big"), int.from_bytes(tail[12:], "big")


def height_bound(query_prefix: bytes, height: int) -> bytes:
    """The first key of `query_prefix` at `height` (bounds for a height range)."""
    return query_prefix + height.to_bytes(8, "big")


def position_bytes(height: int, tx_index: int, event_index: int) -> bytes:
    return height.to_bytes(8, "big") + tx_index.to_bytes(4, "big") + event_index.to_bytes(2, "big")


def _name_bytes(name: str) -> bytes:
    raw = name.encode()
    return len(raw).to_bytes(2, "big") + raw  # the VM allows 64 characters: at most 256 bytes
