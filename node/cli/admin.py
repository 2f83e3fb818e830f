"""`ehrnet admin ...`: the administrator's side of the `ehr` contract (paper Sec. III-B: AddUser, DeleteUser,
Penalty; and beyond it: key recovery after a lost device, review of break-glass accesses, and the in-place upgrade
of the ehr contract to the newest version the release ships).

Every command signs with the admin key (`--key FILE`, or `<data-dir>/keys/admin.key` with `--data-dir`) and talks
to one full node's HTTP API (`--node URL`, or the first node of `<data-dir>/network.toml`). Calls are contract
transactions, waited for until final; answers come from the node's views and event index (node-reported: the
admin runs or trusts that node; a device uses `ehrnet light`, which checks state proofs).

Exit codes: 0 done; 1 the node or the contract refused (message printed); 2 a bad option or key file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.cli.args import node_url
from node.light import args as parse

if TYPE_CHECKING:
    from node.ehr.sharing_client import EhrUser

    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

ROLES = ("admin", "ehr_manager", "edge", "doctor", "carer", "patient")  # ehr.contract ROLES
VERDICTS = ("justified", "misuse")


def register(sub: SubParsers) -> None:
    admin = sub.add_parser("admin", help="administer users, keys, penalties and break-glass reviews")
    cmds = admin.add_subparsers(dest="admin_cmd", required=True)

    add = cmds.add_parser("add-user", help="register a user in the ehr contract (AddUser)")
    _common(add)
    add.add_argument("--pk", required=True, help="the user's Ed25519 public key (hex) or a node's peer id")
    add.add_argument("--role", required=True, choices=ROLES, help="the user's role in the ehr contract")
    add.add_argument("--area", default="", help="area id (required for a patient)")
    add.add_argument(
        "--enc-pk",
        help="the X25519 key records are wrapped for: a light identity's box_public_key "
        "(default: converted from --pk, as for node and demo keys)",
    )
    add.set_defaults(func=cmd_add_user)

    for name, verb in (("allow", "put an account on"), ("disallow", "take an account off")):
        change = cmds.add_parser(name, help=f"{verb} the chain's account allowlist (chains with accounts = allowlist)")
        _common(change)
        change.add_argument("pk", metavar="KEY", help="the account's Ed25519 public key (hex) or a node's peer id")
        change.set_defaults(func=cmd_allowlist, add=name == "allow")

    # import cycle: member.py holds the mesh-membership commands of this group (apart, to keep each module under
    # 500 lines) and builds on this module's helpers; they are listed here, beside the user commands.
    from node.cli.member import register as register_member_commands

    register_member_commands(cmds, _common)  # add-member, remove-member: the p2p mesh's member list

    delete = cmds.add_parser("delete-user", help="remove a user; a patient's record keys are destroyed (erasure)")
    _common(delete)
    delete.add_argument("--pk", required=True, help="the user's Ed25519 public key (hex)")
    delete.set_defaults(func=cmd_delete_user)

    rotate = cmds.add_parser("rotate-key", help="replace a user's signing key after a lost device (recover_key)")
    _common(rotate)
    rotate.add_argument("--old", required=True, metavar="PK", help="the lost key (hex)")
    rotate.add_argument("--new", required=True, metavar="PK", help="the new key (hex)")
    rotate.set_defaults(func=cmd_rotate_key)

    penalties = cmds.add_parser("penalties", help="penalties (warnings) given, or one user's standing")
    _common(penalties)
    penalties.add_argument("--user", metavar="PK", help="only this user (hex), with their warnings and suspension")
    penalties.set_defaults(func=cmd_penalties)

    reviews = cmds.add_parser("reviews", help="break-glass accesses awaiting a verdict")
    _common(reviews)
    reviews.add_argument("--all", action="store_true", help="also list those already reviewed")
    reviews.set_defaults(func=cmd_reviews)

    review = cmds.add_parser("review", help="give a break-glass access its verdict (misuse penalises the doctor)")
    _common(review)
    review.add_argument("--id", required=True, help="the break-glass access id (see: ehrnet admin reviews)")
    review.add_argument(
        "--verdict", required=True, choices=VERDICTS, help="misuse penalises the doctor; justified closes the case"
    )
    review.set_defaults(func=cmd_review)

    upgrade = cmds.add_parser(
        "upgrade-ehr",
        help="upgrade the ehr contract in place to the newest version this release ships (storage kept)",
    )
    _common(upgrade)
    upgrade.set_defaults(func=cmd_upgrade_ehr)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key", type=Path, help="the admin's key file (default: <data-dir>/keys/admin.key)")
    parser.add_argument("--data-dir", type=Path, help="a cluster's data dir (admin key and network.toml)")
    parser.add_argument(
        "--node",
        metavar="URL",
        type=node_url,
        help="a full node's HTTP API (default: from <data-dir>; HOST:PORT works)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _fail(message: str, code: int) -> int:
    print(f"ehrnet: error: {message}", file=sys.stderr)
    return code


def _key_path(args: argparse.Namespace) -> Path:
    if args.key is not None:
        return Path(args.key)
    if args.data_dir is not None:
        from node.cluster.network_init import admin_key_path

        return admin_key_path(Path(args.data_dir))
    raise parse.UsageError("--key: required (or --data-dir of a cluster, whose keys/admin.key is used)")


def _node_url(args: argparse.Namespace) -> str:
    if args.node:
        if not args.node.startswith(("http://", "https://")):
            raise parse.UsageError(f"--node {args.node!r}: expected a node's http:// URL")
        return str(args.node)
    if args.data_dir is not None:
        from node.cluster.config import load_network
        from node.cluster.network_init import RESOLVED_NAME

        network = load_network(Path(args.data_dir) / RESOLVED_NAME)
        if network.nodes:
            return network.nodes[0].http_url
    raise parse.UsageError("--node: required (or --data-dir of a running cluster)")


@contextlib.asynccontextmanager
async def _admin(args: argparse.Namespace) -> AsyncIterator[EhrUser]:
    from node.client import AsyncNodeClient
    from node.client.stdlib import ThreadedTransport
    from node.ehr.sharing_client import EhrUser
    from primitives.keys import KeyFileError, SigningKey

    path = _key_path(args)
    try:
        key = SigningKey.load(path)
    except KeyFileError as exc:
        raise parse.UsageError(f"--key {path}: {exc}") from exc
    url = _node_url(args)
    async with AsyncNodeClient(ThreadedTransport(url, timeout_s=30.0)) as api:
        yield EhrUser(key, api, await api.chain_id())


def _run(args: argparse.Namespace, main: Callable[[], Coroutine[Any, Any, dict[str, Any]]]) -> int:
    from node.cli.dispatch import node_failure
    from node.client import NodeError
    from node.cluster.config import ConfigError
    from node.ehr.sharing_client import SharingError

    try:
        doc = asyncio.run(main())
    except (parse.UsageError, ConfigError) as exc:
        return _fail(str(exc), 2)
    except SharingError as exc:
        return _fail(str(exc), 1)
    except NodeError as exc:
        return node_failure(exc)
    lines = doc.pop("lines")
    print(json.dumps(doc, sort_keys=True) if args.json else "\n".join(lines))
    return 0


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _keys(args: argparse.Namespace, *options: str) -> list[bytes] | int:
    """Parse the named key options, or return exit code 2 after naming the bad one."""
    try:
        return [parse.public_key(getattr(args, o.lstrip("-").replace("-", "_")), o) for o in options]
    except parse.UsageError as exc:
        return _fail(str(exc), 2)


# ---- users -----------------------------------------------------------------------------------------------------


def cmd_add_user(args: argparse.Namespace) -> int:
    keys = _keys(args, "--pk")
    if isinstance(keys, int):
        return keys
    pk = keys[0]
    try:
        enc_pk = None if args.enc_pk is None else parse.x25519_key(args.enc_pk, "--enc-pk")
    except parse.UsageError as exc:
        return _fail(str(exc), 2)
    if args.role == "patient" and not 0 < len(args.area) <= 64:
        return _fail("--area: a patient needs an area id of 1 to 64 characters", 2)

    async def main() -> dict[str, Any]:
        async with _admin(args) as admin:
            uid = await admin.add_user(pk, args.role, args.area, enc_pk)
            # On an allowlist chain a registered user must also be allowed to send (docs/LEDGER.md).
            allowlisted = await admin.accounts_mode() == "allowlist" and await admin.allowlist(pk)
        assert isinstance(uid, bytes)
        line = f"added {pk.hex()} as {args.role}{' in ' + args.area if args.area else ''}: uid {uid.hex()}"
        lines = [line, f"allowlisted {pk.hex()}"] if allowlisted else [line]
        return {"pk": pk.hex(), "role": args.role, "uid": uid.hex(), "allowlisted": allowlisted, "lines": lines}

    return _run(args, main)


def cmd_allowlist(args: argparse.Namespace) -> int:
    keys = _keys(args, "pk")
    if isinstance(keys, int):
        return keys
    pk = keys[0]

    async def main() -> dict[str, Any]:
        async with _admin(args) as admin:
            done = await admin.allowlist(pk, add=args.add)
        verb = "allowlisted" if args.add else "disallowed"
        line = (
            f"{verb} {pk.hex()}" if done else f"approval recorded: more admins must send the same change for {pk.hex()}"
        )
        return {"pk": pk.hex(), "allowlisted" if args.add else "disallowed": done, "lines": [line]}

    return _run(args, main)


def cmd_delete_user(args: argparse.Namespace) -> int:
    keys = _keys(args, "--pk")
    if isinstance(keys, int):
        return keys

    async def main() -> dict[str, Any]:
        async with _admin(args) as admin:
            await admin.delete_user(keys[0])
        line = f"deleted {keys[0].hex()}: user, policies and record index erased; record keys destroyed on erasure"
        return {"pk": keys[0].hex(), "deleted": True, "lines": [line]}

    return _run(args, main)


def cmd_rotate_key(args: argparse.Namespace) -> int:
    keys = _keys(args, "--old", "--new")
    if isinstance(keys, int):
        return keys
    old, new = keys
    if old == new:
        return _fail("--new: the same key as --old", 2)

    async def main() -> dict[str, Any]:
        async with _admin(args) as admin:
            await admin.call("recover_key", [old, new])
        return {"old": old.hex(), "new": new.hex(), "lines": [f"key {old.hex()} replaced by {new.hex()}"]}

    return _run(args, main)


# ---- penalties and break-glass reviews -----------------------------------------------------------------------


async def _events(admin: EhrUser, name: str) -> list[dict[str, Any]]:
    """Every `name` event of the ehr contract, oldest first (the node's event index: node-reported)."""
    from consensus.vm.jsonvalues import from_json

    events = await admin.api.events({"contract": "ehr", "name": name})
    return [{"height": event["height"], **_jsonable(from_json(event["data"]))} for event in events]


def cmd_penalties(args: argparse.Namespace) -> int:
    user_pk = None
    if args.user is not None:
        keys = _keys(args, "--user")
        if isinstance(keys, int):
            return keys
        user_pk = keys[0]

    async def main() -> dict[str, Any]:
        from primitives.keys import address_of

        async with _admin(args) as admin:
            events = await _events(admin, "penalty")
            standing = None
            if user_pk is not None:
                user = await admin.view("get_user", [user_pk])
                if not isinstance(user, dict):
                    from node.ehr.sharing_client import SharingError

                    raise SharingError(f"--user {user_pk.hex()}: no such user in the ehr contract")
                standing = _jsonable(user)
                uid = address_of(user_pk) if not isinstance(user.get("uid"), bytes) else user["uid"]
                assert isinstance(uid, bytes)
                events = [e for e in events if e.get("uid") == uid.hex()]
        lines = [f"h{e['height']}  {e['uid']}  warning {e['warnings']}: {e['action']}" for e in events]
        if standing is not None:
            lines.append(
                f"{standing['uid']} ({standing['role']}): {standing['warnings']} warning(s)"
                f"{', SUSPENDED' if standing['suspended'] else ''}"
            )
        lines.append(f"{len(events)} penalty event(s)")
        return {"penalties": events, "user": standing, "lines": lines}

    return _run(args, main)


def cmd_reviews(args: argparse.Namespace) -> int:
    async def main() -> dict[str, Any]:
        entries = []
        async with _admin(args) as admin:
            number = 1
            while True:  # break-glass ids run 1, 2, … and entries are never deleted
                entry = await admin.view("break_glass_entry", [number])
                if not isinstance(entry, dict):
                    break
                if args.all or entry.get("status") == "pending":
                    entries.append(_jsonable(entry))
                number += 1
        lines = [
            f"#{e['id']}  {e['status']:<9}  doctor {e['doctor']} → patient {e['patient']}: {e['reason']}{_window(e)}"
            for e in entries
        ]
        lines.append(f"{len(entries)} break-glass access(es){'' if args.all else ' awaiting a verdict'}")
        return {"reviews": entries, "lines": lines}

    return _run(args, main)


def _window(entry: dict[str, Any]) -> str:
    """The scope and window of a version-2 break-glass entry (version 1 recorded neither)."""
    if "expires_at" not in entry:
        return ""
    return f"  [scope {entry['scope']}, open until block time {entry['expires_at']}]"


def cmd_review(args: argparse.Namespace) -> int:
    try:
        number = parse.positive_int(args.id, "--id")
    except parse.UsageError as exc:
        return _fail(str(exc), 2)

    async def main() -> dict[str, Any]:
        async with _admin(args) as admin:
            await admin.call("review_break_glass", [number, args.verdict])
        line = (
            f"break-glass #{number}: {args.verdict}{' (the doctor is penalised)' if args.verdict == 'misuse' else ''}"
        )
        return {"id": number, "verdict": args.verdict, "lines": [line]}

    return _run(args, main)


def cmd_upgrade_ehr(args: argparse.Namespace) -> int:
    async def main() -> dict[str, Any]:
        from consensus.contracts import EHR_LATEST

        async with _admin(args) as admin:
            upgraded = await admin.upgrade_ehr()
        line = f"ehr upgraded to {EHR_LATEST}" if upgraded else f"ehr already runs {EHR_LATEST}"
        return {"version": EHR_LATEST, "upgraded": upgraded, "lines": [line]}

    return _run(args, main)


def main(argv: list[str] | None = None) -> int:
    """`python -m node.cli.admin admin ...`: these commands without the rest of `ehrnet`."""
    from node.cli.dispatch import run_standalone

    return run_standalone(register, argv)


if __name__ == "__main__":
    sys.exit(main())
