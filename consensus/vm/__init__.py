"""ehrnet's contract VM: a restricted Python subset, validated with `ast` at deploy and interpreted with gas.

Entry points for the ledger and node: `VM.deploy`, `VM.call`, `VM.view`, `VM.abi` (runtime.py), all returning a
`Receipt`; storage goes through the `Storage` protocol (storage.py). The language is documented in docs/VM.md.
"""

from consensus.vm.context import BlockInfo
from consensus.vm.errors import (
    ArgumentError,
    CallError,
    ContractError,
    ExecutionError,
    LimitExceeded,
    OutOfGas,
    ReceiptFormatError,
    Revert,
    ValidationError,
    VMError,
    WriteInView,
)
from consensus.vm.gas import DEFAULT_LIMITS, DEFAULT_SCHEDULE, GasSchedule, Limits
from consensus.vm.overlay import OverlayStorage
from consensus.vm.program import Program
from consensus.vm.receipts import Event, Receipt, select_events
from consensus.vm.runtime import VM, contract_address
from consensus.vm.storage import MemoryStorage, Storage, code_key, meta_key, name_key, storage_key
from consensus.vm.validator import compile_contract
from consensus.vm.versions import check_python

check_python()  # at start: on a Python whose ast the VM was not checked against, nodes could disagree

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_SCHEDULE",
    "VM",
    "ArgumentError",
    "BlockInfo",
    "CallError",
    "ContractError",
    "Event",
    "ExecutionError",
    "GasSchedule",
    "LimitExceeded",
    "Limits",
    "MemoryStorage",
    "OutOfGas",
    "OverlayStorage",
    "Program",
    "Receipt",
    "ReceiptFormatError",
    "Revert",
    "Storage",
    "VMError",
    "ValidationError",
    "WriteInView",
    "code_key",
    "compile_contract",
    "contract_address",
    "meta_key",
    "name_key",
    "select_events",
    "storage_key",
]
