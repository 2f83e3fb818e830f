"""The VM's exception tree.

Two families: `ValidationError` is raised while checking a contract's source at deploy time (nothing ran), and
`ExecutionError` ends a running call; the runtime turns every `ExecutionError` into a failed receipt, so a bad
contract or a bad call never escapes as a host exception. Messages are built by the VM itself (never copied from
a host exception's text), because receipts are hashed into blocks and must match byte for byte on every node.
"""

from __future__ import annotations


class VMError(Exception):
    """Base of every error the VM raises."""


class ValidationError(VMError):
    """The source uses a construct outside the contract language; `line` is 1-based (0 = whole file)."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


class ExecutionError(VMError):
    """A call stopped early; the runtime rolls back its state changes. `status` names it in the receipt."""

    status = "failed"
    line: int | None = None  # the contract line it happened on, set by the interpreter


class OutOfGas(ExecutionError):
    status = "out_of_gas"


class Revert(ExecutionError):
    """The contract gave up on purpose: `revert(msg)` or a failed `assert`."""

    status = "reverted"


class ContractError(ExecutionError):
    """A fault inside the contract: wrong type, missing key, index out of range, division by zero…"""


class LimitExceeded(ExecutionError):
    """A size bound was hit: integer bits, string or list length, memory, call depth, events."""


class WriteInView(ExecutionError):
    """A read-only view tried to change storage or emit an event."""


class CallError(ExecutionError):
    """The call itself is wrong: unknown contract or function, or arguments that do not fit the ABI."""


class ArgumentError(VMError, ValueError):
    """Arguments given as text or JSON (CLI, HTTP) do not fit the function's ABI."""


class ReceiptFormatError(VMError, ValueError):
    """A receipt or event received from a peer does not have the canonical shape."""
