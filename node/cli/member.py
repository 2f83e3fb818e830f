"""`ehrnet admin add-member` / `ehrnet admin remove-member`: change the p2p mesh's member list on the chain.

Members are node keys (a node's peer ID names its key too) with roles; only members join the ledger's gossip
topics (docs/PROTOCOL.md §2, "Membership"). Each command sends one admin system transaction (`add_member` or
`remove_member`, consensus/membership.py) and waits until it is final; with `admin_threshold` > 1 the change
happens once enough admins have sent the same one. The nodes apply it from the next block.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from consensus.members import ROLES
from node.cli.admin import _admin, _fail, _keys, _run

if TYPE_CHECKING:
    from node.cli.admin import SubParsers


def register(cmds: SubParsers, common: Callable[[argparse.ArgumentParser], None]) -> None:
    add = cmds.add_parser("add-member", help="let a node join the gossip mesh (or change its roles)")
    common(add)
    add.add_argument("member", metavar="KEY", help="the node's Ed25519 public key (hex) or its peer id")
    add.add_argument("--roles", default="", help=f"comma-separated, of {', '.join(ROLES)} (none: a plain full node)")
    add.set_defaults(func=cmd_member, add=True)
    remove = cmds.add_parser("remove-member", help="take a node off the gossip mesh's member list")
    common(remove)
    remove.add_argument("member", metavar="KEY", help="the node's Ed25519 public key (hex) or its peer id")
    remove.set_defaults(func=cmd_member, add=False, roles="")


def parse_roles(text: str) -> list[str] | str:
    """The roles of `--roles`, or the message naming the bad one."""
    roles = [r.strip() for r in text.split(",") if r.strip()]
    for role in roles:
        if role not in ROLES:
            return f"--roles: unknown role {role!r} (expected {', '.join(ROLES)})"
    if len(set(roles)) != len(roles):
        return "--roles: a role is listed twice"
    return roles


def cmd_member(args: argparse.Namespace) -> int:
    keys = _keys(args, "member")
    if isinstance(keys, int):
        return keys
    member = keys[0]
    roles = parse_roles(args.roles)
    if isinstance(roles, str):
        return _fail(roles, 2)
    kind = "add_member" if args.add else "remove_member"
    body: dict[str, Any] = {"key": member, "roles": roles} if args.add else {"key": member}

    async def main() -> dict[str, Any]:
        async with _admin(args) as admin:
            receipt = await admin.submit(kind, body)
        done = any(e.get("name") in ("member_added", "member_removed") for e in receipt.get("events", []))
        what = f"{'added' if args.add else 'removed'} member {member.hex()}"
        if args.add:
            what += f" ({', '.join(roles) or 'no roles'})"
        line = what if done else f"approval recorded: more admins must send the same change for {member.hex()}"
        return {"key": member.hex(), "roles": roles, "done": done, "lines": [line]}

    return _run(args, main)
