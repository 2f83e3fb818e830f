"""Contracts on the ledger: the `deploy` and `call` transaction kinds, the VM's storage in the state tree, and
the EHR contract at genesis (docs/VM.md, "Wiring into the ledger" and "Storage and key layout").

- `deploy` (admins only): body `{"source": str, "args": list, "gas_limit": uint, "name"?: str}`; the contract's
  address is `vm.contract_address(sender address, sha256(source), salt = the tx nonce)`.
- `call` (any sender): body `{"contract": name | address(20), "function": str, "args": list, "gas_limit": uint}`.

Both run the VM (consensus/vm) on a `LedgerStorage` over the block's `WorkingState`, so contract code and storage
are leaves of the one state tree the header's `state_root` commits to, under the `vm/` prefix the ledger reserves
(docs/LEDGER.md §4). The receipt carries the VM's gas (`Receipt.gas`, also added to `cost`: the sender is charged
what the call used, whatever its status), `result = {"vm_status", "return", "address"}`, and the VM's events as
`Event(name, {"contract": address, "data": data})`; a failed call is a failed receipt whose writes are reverted.
"""

from __future__ import annotations

from collections.abc import Callable

from consensus.contracts import deploy_ehr
from consensus.errors import GenesisError, TxError, TxFailed
from consensus.execute import Event, ExecContext, Outcome, TxKind
from consensus.genesis import Genesis, Params
from consensus.state import WorkingState, admins
from consensus.tx import Tx
from consensus.vm import VM, BlockInfo, Receipt, code_key, storage_key
from consensus.vm.runtime import NAME_PATTERN
from consensus.vm.storage import ReadOnlyStorage
from consensus.vm.versions import LATEST_VERSION, rules_for
from consensus.vm_version_state import vm_version_at
from primitives import codec

# Every VM key lives under this prefix in the ledger's state (docs/LEDGER.md §4 reserves "vm/").
VM_PREFIX = b"vm/"
ADDRESS_BYTES = 20
MAX_FUNCTION_NAME = 64
# Genesis is trusted and runs once; the EHR deploy uses about 104k gas.
GENESIS_DEPLOY_GAS = 10_000_000

# One VM per process and VM version: it only caches validated programs by code hash, so sharing it is
# deterministic and saves re-parsing a hot contract on every call (docs/VM.md "Gas and limits").
_VM = VM()
_VMS: dict[int, VM] = {1: _VM}


def shared_vm() -> VM:
    """The VM for read-only calls (views, ABIs), which are not part of consensus: the latest version's, whose
    prices track CPU (docs/VM.md "Calibration"), so a view's gas limit bounds the time it takes."""
    return vm_for(LATEST_VERSION)


def vm_for(version: int) -> VM:
    """The shared VM that runs under VM `version`'s gas schedule and limits (consensus/vm/versions.py)."""
    vm = _VMS.get(version)
    if vm is None:
        rules = rules_for(version)
        vm = _VMS[version] = VM(rules.schedule, rules.limits)
    return vm


def _vm_at(state: WorkingState, ctx: ExecContext) -> VM:
    return vm_for(vm_version_at(state.get, ctx.height, ctx.params.vm_version))


def contract_state_key(address: bytes, key: bytes) -> bytes:
    """The state-tree key of a contract's storage `key`: what `GET /state/proof` proves."""
    return VM_PREFIX + storage_key(address, key)


class LedgerStorage:
    """The VM's `Storage` over a block's `WorkingState`: keys get the `vm/` prefix; snapshots map onto the
    working state's journal (nested snapshots are journal positions, so `commit` has nothing to do)."""

    def __init__(self, state: WorkingState) -> None:
        self._state = state

    def get(self, key: bytes) -> bytes | None:
        return self._state.get(VM_PREFIX + key)

    def set(self, key: bytes, value: bytes) -> None:
        self._state.set(VM_PREFIX + key, value)

    def delete(self, key: bytes) -> None:
        self._state.delete(VM_PREFIX + key)

    def snapshot(self) -> int:
        return self._state.snapshot()

    def revert(self, snapshot: int) -> None:
        self._state.revert(snapshot)

    def commit(self, snapshot: int) -> None:
        return None


class ReadOnlyLedgerStorage(ReadOnlyStorage):
    """The VM's `Storage` over a committed state's getter (e.g. a chain-store reader) for views and ABIs.
    Writes are refused before they get here (the VM's view mode), and refused again here."""

    refusal = "read-only contract state"

    def __init__(self, get_value: Callable[[bytes], bytes | None]) -> None:
        super().__init__(lambda key: get_value(VM_PREFIX + key))


# --- body checks (stateless; run at mempool admission and again in the block) --------------------------------


def _fields(tx: Tx, required: set[str], optional: frozenset[str] = frozenset()) -> None:
    present = set(tx.body)
    if not required <= present or not present <= required | optional:
        extra = f" (optional: {sorted(optional)})" if optional else ""
        raise TxError(f"{tx.kind} body must have the fields {sorted(required)}{extra}")


def _gas_limit(tx: Tx, params: Params) -> int:
    gas = tx.body["gas_limit"]
    if not isinstance(gas, int) or isinstance(gas, bool) or not 0 < gas <= params.max_tx_gas:
        raise TxError(f"gas_limit must be an integer from 1 to max_tx_gas ({params.max_tx_gas})")
    return gas


def _args(tx: Tx) -> list[codec.Value]:
    args = tx.body["args"]
    if not isinstance(args, list):
        raise TxError("args must be a list")
    return args


def _check_deploy(tx: Tx, params: Params) -> None:
    _fields(tx, {"source", "args", "gas_limit"}, frozenset({"name"}))
    source = tx.body["source"]
    if not isinstance(source, str) or not source:
        raise TxError("source must be non-empty text")
    name = tx.body.get("name")
    if name is not None and not (isinstance(name, str) and NAME_PATTERN.fullmatch(name)):
        raise TxError("name must be 1-32 of a-z, 0-9, '_' and '-', starting with a letter")
    _args(tx)
    _gas_limit(tx, params)


def _target(tx: Tx) -> str | bytes:
    contract = tx.body["contract"]
    if isinstance(contract, bytes) and len(contract) == ADDRESS_BYTES:
        return contract
    if isinstance(contract, str) and NAME_PATTERN.fullmatch(contract):
        return contract
    raise TxError("contract must be a 20-byte address or a contract name")


def _check_call(tx: Tx, params: Params) -> None:
    _fields(tx, {"contract", "function", "args", "gas_limit"})
    _target(tx)
    function = tx.body["function"]
    if not isinstance(function, str) or not 0 < len(function) <= MAX_FUNCTION_NAME:
        raise TxError(f"function must be a name of 1 to {MAX_FUNCTION_NAME} characters")
    _args(tx)
    _gas_limit(tx, params)


# --- handlers ------------------------------------------------------------------------------------------------


def _block(ctx: ExecContext) -> BlockInfo:
    return BlockInfo(ctx.height, ctx.time_ms // 1000)  # the VM's ctx.time is in whole seconds


def outcome_of(receipt: Receipt) -> Outcome:
    """The ledger outcome of a VM receipt: gas is the cost; a non-ok status fails the ledger receipt."""
    result: codec.Value = {"vm_status": receipt.status, "return": receipt.return_value, "address": receipt.address}
    events = [Event(e.name, {"contract": e.contract, "data": e.data}) for e in receipt.events]
    error = "" if receipt.ok else f"{receipt.status}: {receipt.error or 'no message'}"
    return Outcome(receipt.gas_used, events, receipt.gas_used, result, error)


def _handle_deploy(state: WorkingState, tx: Tx, ctx: ExecContext) -> Outcome:
    if tx.sender not in admins(state.get):
        raise TxFailed("deploy needs an admin; the sender is not one")
    source, name = tx.body["source"], tx.body.get("name")
    assert isinstance(source, str) and (name is None or isinstance(name, str))
    receipt = _vm_at(state, ctx).deploy(
        LedgerStorage(state),
        tx.sender,
        source,
        _args(tx),
        block=_block(ctx),
        gas_limit=_gas_limit(tx, ctx.params),
        salt=tx.nonce,  # a fresh address for every deploy, even of the same code by the same admin
        name=name,
    )
    return outcome_of(receipt)


def _handle_call(state: WorkingState, tx: Tx, ctx: ExecContext) -> Outcome:
    function = tx.body["function"]
    assert isinstance(function, str)
    receipt = _vm_at(state, ctx).call(
        LedgerStorage(state),
        tx.sender,
        _target(tx),
        function,
        _args(tx),
        block=_block(ctx),
        gas_limit=_gas_limit(tx, ctx.params),
    )
    return outcome_of(receipt)


def contract_kinds() -> list[TxKind]:
    return [TxKind("deploy", _check_deploy, _handle_deploy), TxKind("call", _check_call, _handle_call)]


def deploy_genesis_contracts(state: WorkingState, genesis: Genesis) -> bytes:
    """Deploy the EHR contract as `ehr` in block 0, by the first genesis admin, with all of them as its admins.
    Returns its address. A failure is a broken release, reported as GenesisError."""
    receipt = deploy_ehr(
        vm_for(genesis.params.vm_version),
        LedgerStorage(state),
        genesis.admins[0],
        genesis.admins,
        block=BlockInfo(0, genesis.initial_time_ms // 1000),
        gas_limit=GENESIS_DEPLOY_GAS,
    )
    if not receipt.ok or receipt.address is None:
        raise GenesisError(f"deploying the EHR contract at genesis failed: {receipt.status} {receipt.error}")
    return receipt.address


def has_contract(get_value: Callable[[bytes], bytes | None], address: bytes) -> bool:
    return get_value(VM_PREFIX + code_key(address)) is not None
