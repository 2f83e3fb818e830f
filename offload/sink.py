"""The hook through which offload results become EHRs (paper Sec. III-B: analysed results go to storage).

The sharing issue implements `ResultSink` (encrypt the result per record, put it in the content store, record
its CID with the EHRs manager under the contract's policies). The offload side only promises to call it once
per successful analysis that names a patient, with the canonical result value.
"""

from __future__ import annotations

from typing import Protocol

from consensus import codec


class ResultSink(Protocol):
    def store_result(self, patient: bytes, task: str, result: codec.Value) -> None:
        """Persist `result` of `task` as an EHR of `patient` (an address).

        Called after the result is computed and before it is returned. Must not raise for a well-formed result:
        storage failures are the sink's to log and retry, since the device still deserves its answer."""
        ...
