"""Upgrading a contract in place: the `contract_upgrade` admin transaction (docs/VM.md, "Upgrading a contract").

A permissioned chain's operators expect to replace a contract's code the way Hyperledger Fabric upgrades
chaincode: the admins approve a new version by its code hash (`admin_threshold` of them, like a set change), the
code at the contract's address is replaced and its storage kept, and the address and well-known name stay, so no
caller changes anything. The new version must read the old one's storage (it may add keys, not reinterpret them).

Body `{"contract": name | address(20), "code_hash": bytes(32), "source"?: str}`. Without `source` the code is the
release's bundled contract with that hash (`consensus/contracts/*.contract`): the EHR contract's versions are
larger than `max_tx_bytes`, and every node runs the same release anyway. A node whose release lacks the code
fails the transaction, so its state differs and it stops at that block until it runs a release that has it —
the operators' rule is the usual one for consensus code: upgrade the nodes first, then approve the upgrade.

Why not edit the genesis contract's source in the release instead: its code is part of every chain's genesis
state, so a node built from the edited release would compute another genesis and could not sync an existing
chain. Versions are new files; the genesis file never changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from consensus.contract_txs import VM_PREFIX, LedgerStorage, vm_for
from consensus.contracts import bundled_source
from consensus.errors import TxError, TxFailed
from consensus.execute import COSTS, Event, ExecContext, Outcome, TxKind
from consensus.genesis import Params
from consensus.state import WorkingState
from consensus.tx import Tx
from consensus.vm import code_key
from consensus.vm.errors import CallError, ValidationError
from consensus.vm.runtime import NAME_PATTERN
from consensus.vm.storage import meta_key
from consensus.vm_version_state import vm_version_at
from primitives import codec

KIND = "contract_upgrade"
ADDRESS_BYTES = 20
HASH_BYTES = 32

# Records `tx.sender`'s approval of `change`; True once enough admins approved it (system_txs._approved).
Approve = Callable[[WorkingState, Tx, ExecContext, codec.Value], bool]


def upgrade_body(contract: str | bytes, source: str, *, inline: bool = False) -> dict[str, codec.Value]:
    """The body of an upgrade of `contract` to `source` (sent inline only if asked: the bundled one otherwise)."""
    body: dict[str, codec.Value] = {"contract": contract, "code_hash": hashlib.sha256(source.encode()).digest()}
    if inline:
        body["source"] = source
    return body


def _target(tx: Tx) -> str | bytes:
    contract = tx.body.get("contract")
    if isinstance(contract, bytes) and len(contract) == ADDRESS_BYTES:
        return contract
    if isinstance(contract, str) and NAME_PATTERN.fullmatch(contract):
        return contract
    raise TxError("contract must be a 20-byte address or a contract name")


def _check(tx: Tx, params: Params) -> None:
    present = set(tx.body)
    if not {"contract", "code_hash"} <= present <= {"contract", "code_hash", "source"}:
        raise TxError(f"{KIND} body must have the fields ['code_hash', 'contract'] (optional: ['source'])")
    _target(tx)
    code_hash = tx.body["code_hash"]
    if not isinstance(code_hash, bytes) or len(code_hash) != HASH_BYTES:
        raise TxError("code_hash must be the 32-byte sha256 of the new source")
    source = tx.body.get("source")
    if source is not None and (not isinstance(source, str) or hashlib.sha256(source.encode()).digest() != code_hash):
        raise TxError("source must be text whose sha256 is code_hash")


def _new_source(tx: Tx, code_hash: bytes) -> str:
    source = tx.body.get("source")
    if isinstance(source, str):
        return source
    bundled = bundled_source(code_hash)
    if bundled is None:
        raise TxFailed(
            f"no contract code with hash {code_hash.hex()} in this node's release: send the source, or run a "
            "release that ships it",
            COSTS["system"],
        )
    return bundled


def upgrade_kind(approve: Approve) -> TxKind:
    """The `contract_upgrade` kind; `approve` is the admins' approval rule shared with the set changes."""

    def handle(state: WorkingState, tx: Tx, ctx: ExecContext) -> Outcome:
        code_hash = tx.body["code_hash"]
        assert isinstance(code_hash, bytes)
        vm = vm_for(vm_version_at(state.get, ctx.height, ctx.params.vm_version))
        storage = LedgerStorage(state)
        try:
            address = vm.resolve(storage, _target(tx))
        except CallError as exc:
            raise TxFailed(f"{KIND}: {exc}", COSTS["system"]) from exc
        if not approve(state, tx, ctx, {"kind": KIND, "contract": address, "code_hash": code_hash}):
            return Outcome(COSTS["system"], [Event("approval", {"kind": KIND})])
        source = _new_source(tx, code_hash)
        raw = source.encode()
        cost = COSTS["system"] + vm.schedule.deploy_base + vm.schedule.deploy_byte * len(raw)
        try:
            vm.compile(source)
        except ValidationError as exc:
            raise TxFailed(f"{KIND}: the new code is not a valid contract: {exc}", cost) from exc
        meta = codec.decode(state.get(VM_PREFIX + meta_key(address)) or b"")
        assert isinstance(meta, dict)
        old_hash = meta.get("code_hash")
        if old_hash == code_hash:
            raise TxFailed(f"{KIND}: the contract already runs this code", cost)
        storage.set(code_key(address), raw)
        storage.set(meta_key(address), codec.encode({**meta, "code_hash": code_hash}))
        event = Event("contract_upgraded", {"contract": address, "old_code_hash": old_hash, "code_hash": code_hash})
        return Outcome(cost, [event], cost)

    return TxKind(KIND, _check, handle)
