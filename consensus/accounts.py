"""Account permissioning: which keys may send transactions, as permissioned chains do it.

Besu's account allowlist and Fabric's enrolled identities both make "who may transact" part of the chain's rules
rather than a front-door check. Here the genesis parameter `accounts` chooses:

- `"open"` (the default, and what every chain made before the parameter had): any key may send;
- `"allowlist"`: only an *allowlisted* account may. That is a block-validity rule, checked in `execute` before the
  nonce: a proposer skips such a transaction and a validator rejects a block holding one, so neither gossip nor a
  byzantine proposer gets round it; the mempool and `POST /tx` refuse it first (403) with the same check.

Allowlisted are, implicitly, the chain's system roles — the current admins, the validators of the block's height
(they must be able to send set changes and evidence whatever the list says) and the mesh members with a `manager`
or `edge` role (consensus/membership.py: genesis members, or added by `add_member`; the manager files EHRs and
the edge nodes file results under their node keys) — and explicitly every key an admin added with
`allowlist_add` (body `{"key": 32 bytes}`) and has not removed with `allowlist_remove`. Those two are system
transactions approved like the set changes (`admin_threshold` distinct admins), effective from the next
transaction. Users are allowlisted by the admins — `ehrnet admin add-user` sends the `allowlist_add` with the
registration. The list is one state key per account, `sys/allowlist/<32-byte key>`, so a check is one lookup
and a chain that never used it has no such keys.
"""

from __future__ import annotations

from consensus.errors import TxNotAllowlistedError
from consensus.members import members
from consensus.state import Getter, WorkingState, admins, validators_at

OPEN = "open"
ALLOWLIST = "allowlist"
MODES = (OPEN, ALLOWLIST)
SYSTEM_ROLES = frozenset({"manager", "edge"})  # member roles whose node keys send transactions of their own
ALLOWLIST_PREFIX = b"sys/allowlist/"
_PRESENT = b"\x01"


def allowlist_key(account: bytes) -> bytes:
    return ALLOWLIST_PREFIX + account


def is_listed(get: Getter, account: bytes) -> bool:
    """On the explicit allowlist (admins add and remove entries)."""
    return get(allowlist_key(account)) is not None


def set_listed(state: WorkingState, account: bytes, listed: bool) -> None:
    if listed:
        state.set(allowlist_key(account), _PRESENT)
    else:
        state.delete(allowlist_key(account))


def may_send(get: Getter, account: bytes, height: int) -> bool:
    """May `account` (a sender's public key) send a transaction in a block at `height` of an allowlist chain?"""
    if is_listed(get, account) or account in admins(get):
        return True
    try:
        if account in validators_at(get, height):
            return True
    except ValueError:
        pass
    return bool(SYSTEM_ROLES.intersection(members(get).get(account, ())))


def check_sender(mode: str, get: Getter, account: bytes, height: int) -> None:
    """Raise TxNotAllowlistedError if the chain's `mode` forbids `account` to send at `height`."""
    if mode == ALLOWLIST and not may_send(get, account, height):
        raise TxNotAllowlistedError(
            f'sender {account.hex()} is not an allowlisted account on this chain (accounts = "allowlist"); '
            "an admin must allowlist it first (ehrnet admin allow KEY, or admin add-user)"
        )
