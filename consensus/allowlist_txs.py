"""The admin system transactions that maintain the account allowlist (consensus/accounts.py).

`allowlist_add {"key": 32 bytes}` and `allowlist_remove {"key": 32 bytes}` are approved like the other set changes
(`admin_threshold` distinct current admins sending the same change) and take effect from the next transaction.
They are valid in both account modes: on an "open" chain the list is kept but nothing consults it, so admins can
enrol accounts before a chain's operators would ever move to an allowlist.
"""

from __future__ import annotations

from collections.abc import Callable

from consensus.accounts import is_listed, set_listed
from consensus.errors import TxError, TxFailed
from consensus.execute import COSTS, Event, ExecContext, Outcome, TxKind
from consensus.state import WorkingState
from consensus.tx import Tx
from primitives import codec

ADD = "allowlist_add"
REMOVE = "allowlist_remove"

Approve = Callable[[WorkingState, Tx, ExecContext, codec.Value], bool]


def _account(tx: Tx) -> bytes:
    if set(tx.body) != {"key"}:
        raise TxError(f"{tx.kind} body must have exactly the field 'key'")
    key = tx.body["key"]
    if not isinstance(key, bytes) or len(key) != 32:
        raise TxError("key must be a 32-byte Ed25519 public key (the account to allowlist)")
    return key


def _check(tx: Tx, params: object) -> None:
    _account(tx)


def allowlist_kinds(approve: Approve) -> list[TxKind]:
    """`allowlist_add` and `allowlist_remove`, approved through `approve` (system_txs' admin approval rule)."""

    def handle(state: WorkingState, tx: Tx, ctx: ExecContext) -> Outcome:
        key = _account(tx)
        adding = tx.kind == ADD
        if not adding and not is_listed(state.get, key):
            raise TxFailed("the key is not on the allowlist", COSTS["system"])
        if not approve(state, tx, ctx, {"kind": tx.kind, "key": key}):
            return Outcome(COSTS["system"], [Event("approval", {"kind": tx.kind})])
        set_listed(state, key, adding)
        event = Event("account_allowlisted" if adding else "account_disallowed", {"key": key})
        return Outcome(COSTS["system"] + COSTS["write"], [event])

    return [TxKind(ADD, _check, handle), TxKind(REMOVE, _check, handle)]
