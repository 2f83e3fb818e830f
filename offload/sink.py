"""The hook through which offload results become EHRs (paper Sec. III-B: analysed results go to storage).

The sharing issue implements `ResultSink` (encrypt the result per record, put it in the content store, record
its CID with the EHRs manager under the contract's policies). The offload side only promises to call it once
per successful analysis that names a patient, with the canonical result value and, when the device sent one,
the record context (measuring device and window) from which `offload.fhir.build_record` makes the FHIR record.
"""

from __future__ import annotations

from typing import Protocol

from offload.context import RecordContext
from primitives import codec


class ResultSink(Protocol):
    def store_result(self, patient: bytes, task: str, result: codec.Value, record: RecordContext | None) -> None:
        """Persist `result` of `task` as an EHR of `patient` (an address).

        `record` is None when the device named a patient but no device/window; the sink then has too little to
        build a FHIR record and may store the bare result or skip it. Called after the result is computed and
        before it is returned. Must not raise for a well-formed result: storage failures are the sink's to log
        and retry, since the device still deserves its answer."""
        ...
