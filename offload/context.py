"""Who and when an analysis result is about: what turns a bare result into a health record.

A device that asks the edge node to store a result as the patient's EHR (paper Sec. III-B: analysed results go
to storage) also says which device measured the window and when, so that the edge builds exactly the record the
device would have built itself (offload/fhir.py): same bytes, hence the same content identifier, wherever the
task ran. It travels inside the sealed request, next to the patient (docs/OFFLOAD.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from offload.errors import MalformedError
from primitives import codec

# FHIR R4 `id` (the part after "Device/" in a reference): 1-64 of letters, digits, '-' and '.'.
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
# FHIR dateTime years run to 9999; the first millisecond of the year 10000 is out of range.
MAX_EPOCH_MS = 253_402_300_800_000
_WIRE_KEYS = frozenset({"device", "start_ms", "end_ms"})


def is_fhir_id(text: str) -> bool:
    return bool(_FHIR_ID.match(text))


@dataclass(frozen=True)
class RecordContext:
    """The measuring device (a FHIR Device id) and the window the task's input covers (Unix ms, UTC)."""

    device: str
    start_ms: int
    end_ms: int

    def __post_init__(self) -> None:
        if not isinstance(self.device, str) or not is_fhir_id(self.device):
            raise MalformedError("record device must be a FHIR id: 1-64 of [A-Za-z0-9.-]")
        for name in ("start_ms", "end_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_EPOCH_MS:
                raise MalformedError(f"record {name} must be Unix milliseconds between 1970 and 9999")
        if self.end_ms < self.start_ms:
            raise MalformedError("record window ends before it starts")

    def to_wire(self) -> dict[str, codec.Value]:
        return {"device": self.device, "start_ms": self.start_ms, "end_ms": self.end_ms}

    @classmethod
    def from_wire(cls, value: codec.Value) -> RecordContext:
        """Parse the `record` field of a request; anything else than the exact map raises `MalformedError`."""
        if not isinstance(value, dict) or set(value) != _WIRE_KEYS:
            raise MalformedError(f"field 'record' must be a map with keys {sorted(_WIRE_KEYS)}")
        device, start, end = value["device"], value["start_ms"], value["end_ms"]
        if not isinstance(device, str) or not isinstance(start, int) or not isinstance(end, int):
            raise MalformedError("field 'record' has ill-typed members")
        return cls(device, start, end)
