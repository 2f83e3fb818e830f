"""The mesh's member list as chain state: its roles, its canonical value, reading and writing it.

The list itself is explained in consensus/membership.py, which holds the admin transactions that change it. This
part sits below block execution because the genesis, the account rules and the gossip validator read and write
the list too, and the transactions build on execution (consensus/execute.py), which imports those.
"""

from __future__ import annotations

from collections.abc import Mapping

from consensus.errors import GenesisError, TxError
from consensus.state import Getter, WorkingState
from primitives import codec

ROLES = ("validator", "edge", "storage", "manager")
MEMBERS_KEY = b"sys/members"

Members = dict[bytes, tuple[str, ...]]


def check_roles(roles: object, error: type[Exception] = TxError) -> tuple[str, ...]:
    if not isinstance(roles, list | tuple):
        raise error(f"roles must be a list of {', '.join(ROLES)} (empty: a plain full node)")
    for role in roles:
        if role not in ROLES:
            raise error(f"unknown role {role!r} (expected one of {', '.join(ROLES)})")
    if len(set(roles)) != len(roles):
        raise error("roles lists a role twice")
    return tuple(sorted(str(r) for r in roles))


def members_to_value(members: Mapping[bytes, tuple[str, ...]]) -> list[codec.Value]:
    """Canonical form: entries sorted by key, each `{"key": bytes, "roles": [sorted roles]}`."""
    return [{"key": key, "roles": list(members[key])} for key in sorted(members)]


def members_from_value(value: object, error: type[Exception] = GenesisError) -> Members:
    if not isinstance(value, list):
        raise error("members must be a list of {key, roles}")
    found: Members = {}
    for entry in value:
        if not isinstance(entry, dict) or set(entry) != {"key", "roles"}:
            raise error("a member is a map of exactly key and roles")
        key = entry["key"]
        if isinstance(key, str) and len(key) == 64:
            try:
                key = bytes.fromhex(key)
            except ValueError:
                raise error("a member key must be 32 bytes (64 hex characters)") from None
        if not isinstance(key, bytes) or len(key) != 32:
            raise error("a member key must be 32 bytes (64 hex characters)")
        if key in found:
            raise error("members lists a key twice")
        found[key] = check_roles(entry["roles"], error)
    return found


def members(get: Getter) -> Members:
    """The explicit member list in a state (empty on a chain whose genesis had none and no add_member yet)."""
    raw = get(MEMBERS_KEY)
    if raw is None:
        return {}
    return members_from_value(codec.decode(raw), ValueError)


def set_members(state: WorkingState, value: Mapping[bytes, tuple[str, ...]]) -> None:
    state.set(MEMBERS_KEY, codec.encode(members_to_value(value)))
