"""The built-in transaction kinds: `record` and the system kinds that govern the chain.

- `record`: the sender stores a small value under a key in its own namespace (gives the chain real state until
  the contract VM lands).
- `validator_set_change`: admins replace the validator set; it takes effect `validator_change_delay` heights
  later, so the set signing any height is fixed before that height starts (a header names the next height's set).
- `admin_set_change`: admins replace the admin set the same way (effective from the next transaction); it can
  never become empty, so a lost or rotated admin key is replaced and the chain is never stuck.
- `evidence`: two conflicting signed votes from one validator at one height and round (equivocation) are
  recorded on chain, once.
- `set_vm_version`: admins switch the VM rules (gas schedule and limits, consensus/vm/versions.py) from a later
  height on; blocks below it keep re-executing under the rules they were made with.
With `admin_threshold` > 1 a set change happens when that many distinct current admins sent the same change.
"""

from __future__ import annotations

from consensus.allowlist_txs import allowlist_kinds
from consensus.contract_txs import contract_kinds
from consensus.contract_upgrade import upgrade_kind
from consensus.errors import TxError, TxFailed
from consensus.execute import COSTS, Event, ExecContext, Outcome, Registry, TxKind
from consensus.genesis import Params
from consensus.membership import member_kinds
from consensus.state import (
    APPROVALS_PREFIX,
    EVIDENCE_PREFIX,
    WorkingState,
    admins,
    record_key,
    set_admins,
    set_validator_schedule,
    validator_schedule,
    validators_at,
)
from consensus.tx import Tx
from consensus.vm.versions import RULES
from consensus.vm_version_state import schedule_vm_version
from consensus.votes import ValidatorSet, Vote
from primitives import codec


def _only_fields(tx: Tx, names: set[str]) -> None:
    if set(tx.body) != names:
        raise TxError(f"{tx.kind} body must have exactly the fields {sorted(names)}")


def _check_record(tx: Tx, params: Params) -> None:
    _only_fields(tx, {"key", "value"})
    key, value = tx.body["key"], tx.body["value"]
    if not isinstance(key, bytes) or not 0 < len(key) <= params.max_record_key_bytes:
        raise TxError(f"record key must be 1 to {params.max_record_key_bytes} bytes")
    if not isinstance(value, bytes) or len(value) > params.max_record_value_bytes:
        raise TxError(f"record value must be at most {params.max_record_value_bytes} bytes")


def _handle_record(state: WorkingState, tx: Tx, ctx: ExecContext) -> Outcome:
    key, value = tx.body["key"], tx.body["value"]
    assert isinstance(key, bytes) and isinstance(value, bytes)
    state.set(record_key(tx.address, key), value)
    return Outcome(COSTS["write"], [Event("record", {"owner": tx.address, "key": key})])


def _key_list(tx: Tx, field: str, limit: int) -> tuple[bytes, ...]:
    _only_fields(tx, {field})
    keys = tx.body[field]
    if not isinstance(keys, list) or not 0 < len(keys) <= limit:
        raise TxError(f"{field} must be a list of 1 to {limit} public keys")
    if not all(isinstance(k, bytes) and len(k) == 32 for k in keys):
        raise TxError(f"{field} must hold 32-byte Ed25519 public keys")
    members = tuple(k for k in keys if isinstance(k, bytes))
    if len(set(members)) != len(members):
        raise TxError(f"{field} lists a key twice")
    return members


def _approved(state: WorkingState, tx: Tx, ctx: ExecContext, change: codec.Value) -> bool:
    """Record the sender's approval of `change`; True once enough distinct current admins approved it."""
    current = admins(state.get)
    if tx.sender not in current:
        raise TxFailed(f"{tx.kind} needs an admin; the sender is not one", COSTS["system"])
    key = APPROVALS_PREFIX + codec.digest(change)
    stored = state.get(key)
    approvers = [] if stored is None else codec.decode(stored)
    assert isinstance(approvers, list)
    # Only approvals from admins still in office count (an admin removed meanwhile loses its vote).
    voters = {a for a in approvers if isinstance(a, bytes) and a in current} | {tx.sender}
    if len(voters) >= min(ctx.params.admin_threshold, len(current)):
        state.delete(key)
        return True
    state.set(key, codec.encode(list[codec.Value](sorted(voters))))
    return False


def _check_validators(tx: Tx, params: Params) -> None:
    _key_list(tx, "validators", params.max_validators)


def _handle_validators(state: WorkingState, tx: Tx, ctx: ExecContext) -> Outcome:
    members = _key_list(tx, "validators", ctx.params.max_validators)
    if not _approved(state, tx, ctx, {"kind": tx.kind, "validators": list(members)}):
        return Outcome(COSTS["system"], [Event("approval", {"kind": tx.kind})])
    first_height = ctx.height + ctx.params.validator_change_delay
    schedule = [(h, m) for h, m in validator_schedule(state.get) if h < first_height]
    # Keep only the history evidence may still refer to: the set in force max_evidence_age heights ago onwards.
    horizon = ctx.height - ctx.params.max_evidence_age
    while len(schedule) > 1 and schedule[1][0] <= horizon:
        schedule.pop(0)
    schedule.append((first_height, members))
    set_validator_schedule(state, schedule)
    event = Event("validator_set_scheduled", {"height": first_height, "hash": ValidatorSet(members).hash()})
    return Outcome(COSTS["system"] + COSTS["write"], [event])


def _check_admins(tx: Tx, params: Params) -> None:
    _key_list(tx, "admins", params.max_validators)


def _handle_admins(state: WorkingState, tx: Tx, ctx: ExecContext) -> Outcome:
    members = _key_list(tx, "admins", ctx.params.max_validators)
    if not _approved(state, tx, ctx, {"kind": tx.kind, "admins": list(members)}):
        return Outcome(COSTS["system"], [Event("approval", {"kind": tx.kind})])
    set_admins(state, members)
    return Outcome(COSTS["system"] + COSTS["write"], [Event("admin_set_changed", {"admins": list(members)})])


def evidence_body(first: Vote, second: Vote) -> dict[str, codec.Value]:
    """The body of an `evidence` transaction for two conflicting votes (e.g. from evidence.DuplicateVoteEvidence)."""
    return {"votes": [first.to_value(), second.to_value()]}


def equivocation_votes(tx: Tx, chain_id: str) -> tuple[Vote, Vote]:
    """The two conflicting votes an `evidence` transaction carries, checked (TxError if they prove nothing)."""
    _only_fields(tx, {"votes"})
    pair = tx.body["votes"]
    if not isinstance(pair, list) or len(pair) != 2:
        raise TxError("evidence votes must be a list of two votes")
    try:
        a, b = Vote.from_value(pair[0]), Vote.from_value(pair[1])
    except ValueError as exc:
        raise TxError(f"malformed evidence vote: {exc}") from exc
    same = (a.kind, a.chain_id, a.height, a.round, a.validator) == (b.kind, b.chain_id, b.height, b.round, b.validator)
    if not same or a.block_hash == b.block_hash:
        raise TxError("evidence needs two votes by one validator, same kind/height/round, for different blocks")
    if a.chain_id != chain_id:
        raise TxError(f"evidence votes are for chain {a.chain_id!r}")
    if not (a.verify() and b.verify()):
        raise TxError("an evidence vote's signature does not verify")
    return a, b


def _check_evidence(tx: Tx, params: Params) -> None:
    equivocation_votes(tx, tx.chain_id)


def _handle_evidence(state: WorkingState, tx: Tx, ctx: ExecContext) -> Outcome:
    a, b = equivocation_votes(tx, ctx.chain_id)
    if not ctx.height - ctx.params.max_evidence_age <= a.height <= ctx.height:
        raise TxFailed(f"evidence for height {a.height} is outside the accepted window", COSTS["system"])
    try:
        members = validators_at(state.get, a.height)
    except ValueError as exc:
        raise TxFailed(f"no validator set known at height {a.height}", COSTS["system"]) from exc
    if a.validator not in members:
        raise TxFailed("the accused was not a validator at that height", COSTS["system"])
    # One record per offence (validator, height, round, kind), whichever pair of votes proves it.
    key = EVIDENCE_PREFIX + codec.digest([a.validator, a.height, a.round, int(a.kind)])
    if state.get(key) is not None:
        raise TxFailed("this equivocation is already recorded", COSTS["system"])
    first, second = sorted([a, b], key=lambda v: v.block_hash or b"")
    state.set(key, codec.encode({"recorded_at": ctx.height, "votes": [first.to_value(), second.to_value()]}))
    event = Event("equivocation", {"validator": a.validator, "height": a.height, "round": a.round})
    return Outcome(COSTS["system"] + COSTS["write"], [event])


def _vm_switch(tx: Tx) -> tuple[int, int]:
    _only_fields(tx, {"version", "activation_height"})
    version, height = tx.body["version"], tx.body["activation_height"]
    if not isinstance(version, int) or isinstance(version, bool) or version not in RULES:
        raise TxError(f"version must be one of {sorted(RULES)}")
    if not isinstance(height, int) or isinstance(height, bool) or height < 1:
        raise TxError("activation_height must be a positive integer")
    return version, height


def _check_vm_version(tx: Tx, params: Params) -> None:
    _vm_switch(tx)


def _handle_vm_version(state: WorkingState, tx: Tx, ctx: ExecContext) -> Outcome:
    version, height = _vm_switch(tx)
    if height <= ctx.height:
        # The rules of a height must be fixed before it starts: the block holding a switch runs under the old ones.
        raise TxFailed(f"activation_height {height} is not after this block ({ctx.height})", COSTS["system"])
    if not _approved(state, tx, ctx, {"kind": tx.kind, "version": version, "activation_height": height}):
        return Outcome(COSTS["system"], [Event("approval", {"kind": tx.kind})])
    schedule_vm_version(state, height, version)
    event = Event("vm_version_scheduled", {"version": version, "activation_height": height})
    return Outcome(COSTS["system"] + COSTS["write"], [event])


def record_kind() -> TxKind:
    return TxKind("record", _check_record, _handle_record)


SYSTEM_KINDS = [
    TxKind("validator_set_change", _check_validators, _handle_validators),
    TxKind("admin_set_change", _check_admins, _handle_admins),
    TxKind("evidence", _check_evidence, _handle_evidence),
    TxKind("set_vm_version", _check_vm_version, _handle_vm_version),
]
# Membership of the p2p mesh (consensus/membership.py): `add_member`, `remove_member`, approved like set changes.
SYSTEM_KINDS += member_kinds(_approved)


def default_registry() -> Registry:
    """The kinds every node runs: `record`, the system kinds, the contract kinds `deploy` and `call`, and
    `contract_upgrade` (admins replace a contract's code, approved like a set change), and the account allowlist's
    `allowlist_add` / `allowlist_remove` (consensus/allowlist_txs.py)."""
    kinds = [record_kind(), *SYSTEM_KINDS, *contract_kinds(), upgrade_kind(_approved)]
    return Registry([*kinds, *allowlist_kinds(_approved)])
