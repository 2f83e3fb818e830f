"""Membership of the permissioned p2p mesh, kept on the chain: who may join the gossip topics, with which roles.

The network is permissioned and so is its mesh (docs/PROTOCOL.md §2, "Membership"). A member is a node key (its
libp2p peer ID is derived from it, node/p2p/identity.py) with roles among `ROLES` (none: a plain full node). The
chain holds the explicit list:

- in genesis (`Genesis.members`, written at `sys/members` in block 0's state); a genesis made before members
  existed has none, and its hash and state root are unchanged — nodes of such a chain take its members from the
  network config instead (node/ledger/gossip/validation.py, "legacy chains");
- changed by admins with `add_member` (body `{"key": 32 bytes, "roles": [role, …]}`; adds, or replaces a
  member's roles) and `remove_member` (body `{"key": 32 bytes}`), approved like the other set changes
  (`admin_threshold` distinct admins), effective from the next block.

Validators are members by definition while they are in the validator set, whatever this list says: a node that
signs blocks must be able to gossip its votes.
"""

from __future__ import annotations

from collections.abc import Callable

from consensus.errors import TxError, TxFailed
from consensus.execute import COSTS, Event, ExecContext, Outcome, TxKind
from consensus.members import check_roles, members, set_members
from consensus.state import WorkingState
from consensus.tx import Tx
from primitives import codec

Approve = Callable[[WorkingState, Tx, ExecContext, codec.Value], bool]


def _member_key(tx: Tx, fields: set[str]) -> bytes:
    if set(tx.body) != fields:
        raise TxError(f"{tx.kind} body must have exactly the fields {sorted(fields)}")
    key = tx.body["key"]
    if not isinstance(key, bytes) or len(key) != 32:
        raise TxError("key must be a 32-byte Ed25519 public key (the member's node key)")
    return key


def _check_add(tx: Tx, params: object) -> None:
    _member_key(tx, {"key", "roles"})
    check_roles(tx.body["roles"])


def _check_remove(tx: Tx, params: object) -> None:
    _member_key(tx, {"key"})


def member_kinds(approve: Approve) -> list[TxKind]:
    """`add_member` and `remove_member`, approved through `approve` (system_txs' admin approval rule)."""

    def handle_add(state: WorkingState, tx: Tx, ctx: ExecContext) -> Outcome:
        key = _member_key(tx, {"key", "roles"})
        roles = check_roles(tx.body["roles"])
        if not approve(state, tx, ctx, {"kind": tx.kind, "key": key, "roles": list(roles)}):
            return Outcome(COSTS["system"], [Event("approval", {"kind": tx.kind})])
        current = members(state.get)
        current[key] = roles
        set_members(state, current)
        return Outcome(COSTS["system"] + COSTS["write"], [Event("member_added", {"key": key, "roles": list(roles)})])

    def handle_remove(state: WorkingState, tx: Tx, ctx: ExecContext) -> Outcome:
        key = _member_key(tx, {"key"})
        current = members(state.get)
        if key not in current:
            raise TxFailed("no such member in the chain's member list", COSTS["system"])
        if not approve(state, tx, ctx, {"kind": tx.kind, "key": key}):
            return Outcome(COSTS["system"], [Event("approval", {"kind": tx.kind})])
        del current[key]
        set_members(state, current)
        return Outcome(COSTS["system"] + COSTS["write"], [Event("member_removed", {"key": key})])

    return [TxKind("add_member", _check_add, handle_add), TxKind("remove_member", _check_remove, handle_remove)]
