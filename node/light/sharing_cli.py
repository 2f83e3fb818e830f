"""`ehrnet light records|grant|revoke|request|audit`: a patient's and a doctor's side of EHR sharing.

What each answer rests on (docs/LIGHT.md, "Sharing commands"):
- proof-verified against a header the client verified: the caller's registration, the record list (`records`),
  the policy a grant or revoke leaves (`grant`, `revoke`), that each record a doctor receives is registered to
  the patient asked about (`request`), and the audit trail (`audit`);
- node-reported: whether a submitted call succeeded (its receipt), and the manager's refusal of a request; the
  refusal itself is on the ledger and shows in the patient's proof-verified audit trail.

Exit codes: 0 done; 1 a node, the manager or the contract refused (message printed); 2 a bad option or file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.cli.args import node_url
from node.light import args as parse

if TYPE_CHECKING:
    from node.ehr.sharing_client import Record
    from node.light.session import LightSession

    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]


def register(cmds: SubParsers) -> None:
    records = cmds.add_parser("records", help="list my records (CIDs), proof-verified")
    session_args(records)
    records.set_defaults(func=cmd_records)

    grant = cmds.add_parser("grant", help="grant a user read access to my records (PolicyList)")
    session_args(grant)
    grant.add_argument("--to", required=True, metavar="PK", help="the grantee's Ed25519 public key (hex)")
    grant.add_argument("--scope", default="*", help='"*" (all records, default) or comma-separated CIDs')
    grant.add_argument("--expires", default="+1d", metavar="T", help="never, +N[s|m|h|d], Unix seconds or ISO time")
    grant.set_defaults(func=cmd_grant)

    revoke = cmds.add_parser("revoke", help="withdraw a user's access to my records")
    session_args(revoke)
    revoke.add_argument("--to", required=True, metavar="PK", help="the grantee's Ed25519 public key (hex)")
    revoke.set_defaults(func=cmd_revoke)

    request = cmds.add_parser("request", help="read a patient's records through the 4-step protocol")
    session_args(request)
    request.add_argument("--patient", required=True, metavar="PK", help="the patient's Ed25519 public key (hex)")
    request.add_argument(
        "--manager",
        metavar="MULTIADDR|URL",
        help="the EHRs manager (default: the config's node with role manager); with --http, its http:// URL",
    )
    request.add_argument(
        "--http",
        action="store_true",
        help="send the signed request to the manager node's HTTP relay (POST /ehr/request) instead of over libp2p",
    )
    request.add_argument("--out", type=Path, help="write each record to DIR/<cid>.json instead of printing it")
    request.set_defaults(func=cmd_request)

    audit = cmds.add_parser("audit", help="who accessed my records (the contract's audit trail), proof-verified")
    session_args(audit)
    audit.add_argument("--last", default="50", help="show the newest N entries (default 50)")
    audit.set_defaults(func=cmd_audit)


def session_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="the network's resolved config (network.toml)")
    parser.add_argument("--data-dir", type=Path, required=True, help="the client's directory (trusted head, keys)")
    parser.add_argument("--identity", type=Path, help="directory of signing.key and box.key (default: --data-dir)")
    parser.add_argument(
        "--node",
        dest="nodes",
        action="append",
        default=[],
        metavar="URL",
        type=node_url,
        help="a full node's HTTP API (repeatable; HOST:PORT works too)",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per node request (default 10)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def fail(message: str, code: int) -> int:
    print(f"ehrnet: error: {message}", file=sys.stderr)
    return code


def run(main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Run a command's coroutine and turn the errors it may raise into exit codes with a message."""
    from node.cli.dispatch import node_failure
    from node.client import NodeError
    from node.cluster.config import ConfigError
    from node.ehr.sharing_client import SharingError
    from node.light.errors import IdentityError, LightError, TrustStoreError

    try:
        return asyncio.run(main())
    except (parse.UsageError, IdentityError, TrustStoreError, ConfigError) as exc:
        return fail(str(exc), 2)
    except (SharingError, LightError) as exc:
        return fail(str(exc), 1)
    except NodeError as exc:
        return node_failure(exc)


def session(args: argparse.Namespace) -> Any:
    from node.light.session import open_session

    return open_session(args.config, args.data_dir, args.identity, args.nodes, args.timeout)


def when(seconds: object) -> str:
    if not isinstance(seconds, int) or seconds == 0:
        return "never" if seconds == 0 else str(seconds)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def emit(args: argparse.Namespace, doc: dict[str, Any], lines: list[str]) -> None:
    print(json.dumps(doc, sort_keys=True) if args.json else "\n".join(lines))


# ---- records ---------------------------------------------------------------------------------------------------


def cmd_records(args: argparse.Namespace) -> int:
    async def main() -> int:
        async with session(args) as s:
            uid = await s.my_uid()
            found = await s.state.records(uid)
            height = s.follower.height
        rows = [{"cid": r.get("cid"), "by": _hex(r.get("by")), "time": r.get("time")} for r in found]
        lines = [f"{r['cid']}  filed {when(r['time'])} by {r['by']}" for r in rows]
        lines.append(f"{len(rows)} record(s) of {uid.hex()} (proof-verified at height {height})")
        emit(args, {"uid": uid.hex(), "records": rows, "height": height}, lines)
        return 0

    return run(main)


def _hex(value: object) -> str | None:
    return value.hex() if isinstance(value, bytes) else None


# ---- grant and revoke ----------------------------------------------------------------------------------------


def cmd_grant(args: argparse.Namespace) -> int:
    try:
        grantee = parse.public_key(args.to, "--to")
        scope = parse.scope(args.scope)
        expires = parse.expiry(args.expires, int(time.time()))
    except parse.UsageError as exc:
        return fail(str(exc), 2)

    async def main() -> int:
        from node.light.errors import LightError

        async with session(args) as s:
            uid = await s.my_uid()
            await s.user.grant(grantee, scope, expires)
            await s.follower.sync()
            got = await s.state.policy(uid, await s.state.uid_of(grantee))
        policy = got.value if isinstance(got.value, dict) else None
        if policy is None or policy.get("scope") != scope or policy.get("expires_at") != expires:
            raise LightError(f"the grant is not in the verified state at height {got.height}: {policy!r}")
        lines = [f"granted {grantee.hex()} scope {scope} until {when(expires)} (proof-verified at height {got.height})"]
        emit(args, {"grantee": grantee.hex(), "scope": scope, "expires_at": expires, "height": got.height}, lines)
        return 0

    return run(main)


def cmd_revoke(args: argparse.Namespace) -> int:
    try:
        grantee = parse.public_key(args.to, "--to")
    except parse.UsageError as exc:
        return fail(str(exc), 2)

    async def main() -> int:
        from node.light.errors import LightError

        async with session(args) as s:
            uid = await s.my_uid()
            await s.user.revoke(grantee)
            await s.follower.sync()
            got = await s.state.policy(uid, await s.state.uid_of(grantee))
        if got.value is not None:
            raise LightError(f"a policy for {grantee.hex()} is still in the verified state at height {got.height}")
        emit(
            args,
            {"grantee": grantee.hex(), "revoked": True, "height": got.height},
            [f"revoked {grantee.hex()} (no policy left; proof-verified at height {got.height})"],
        )
        return 0

    return run(main)


# ---- request ---------------------------------------------------------------------------------------------------


def cmd_request(args: argparse.Namespace) -> int:
    try:
        patient = parse.public_key(args.patient, "--patient")
    except parse.UsageError as exc:
        return fail(str(exc), 2)
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        return fail(f"--out {args.out}: not a directory", 2)

    async def main() -> int:
        async with session(args) as s:
            shown = await _request(s, args, patient)
        emit(args, shown, shown.pop("lines"))
        return 0

    return run(main)


async def _request(s: LightSession, args: argparse.Namespace, patient: bytes) -> dict[str, Any]:
    from node.ehr.sharing_client import SharingError
    from node.light.errors import LightError
    from offload.errors import OffloadError
    from offload.fhir import parse_record

    patient_uid = await s.state.uid_of(patient)
    started = time.monotonic()
    try:
        if args.http:
            got, height = await _request_over_http(s, args.manager, patient)
        else:
            got, height = await _request_over_libp2p(s, args.manager, patient)
    except SharingError as exc:
        if str(exc).startswith("denied:"):
            raise SharingError(await _with_penalty(s, str(exc))) from exc
        raise
    took_ms = 1000 * (time.monotonic() - started)
    records, lines = [], []
    for record in got:
        # The manager is one node: that a record belongs to this patient is checked against the chain itself.
        owner = await s.state.record_owner(record.cid)
        if owner != patient_uid:
            raise LightError(f"record {record.cid}: the verified state does not register it to {patient.hex()}")
        try:
            analysis = parse_record(record.plaintext)
        except OffloadError as exc:
            raise LightError(f"record {record.cid}: not a valid FHIR R4 analysis record: {exc}") from exc
        entry: dict[str, Any] = {"cid": record.cid, "task": analysis.task, "result": analysis.result}
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            path = args.out / f"{record.cid}.json"
            path.write_bytes(record.plaintext)
            entry["file"] = str(path)
            lines.append(f"{record.cid}  {analysis.task}  → {path}")
        else:
            entry["fhir"] = json.loads(record.plaintext)
            lines.append(f"{record.cid}  {analysis.task}  {json.dumps(analysis.result, sort_keys=True)}")
            lines.append(record.plaintext.decode())
        records.append(entry)
    lines.append(
        f"{len(records)} record(s) decrypted and validated (FHIR R4) in {took_ms:.0f} ms; access recorded at height "
        f"{height}; each record's owner proof-verified"
    )
    return {"patient": patient.hex(), "records": records, "height": height, "ms": round(took_ms), "lines": lines}


async def _request_over_libp2p(s: LightSession, given: str | None, patient: bytes) -> tuple[list[Record], int]:
    from node.ehr.sharing_client import SharingError
    from node.light.session import libp2p_host, peer_of, role_multiaddr
    from node.p2p.bridge import P2PError

    manager = role_multiaddr(s.network, "manager", given, "--manager")
    try:
        async with libp2p_host([manager]) as host:
            return await s.user.request_records(host, peer_of(manager), patient)
    except P2PError as exc:
        raise SharingError(f"the EHRs manager at {manager}: {exc}") from exc


async def _request_over_http(s: LightSession, given: str | None, patient: bytes) -> tuple[list[Record], int]:
    """No libp2p on this device: the manager node relays the same signed request from its HTTP API."""
    from node.light.client import is_http
    from node.light.session import peer_of, role_multiaddr

    if given is not None and is_http(given):
        url = given
    else:
        manager = role_multiaddr(s.network, "manager", given, "--manager")
        spec = next((n for n in s.network.nodes if n.peer_id == peer_of(manager)), None)
        if spec is None:
            raise parse.UsageError(f"--manager {given!r}: with --http, give the manager's http:// URL")
        url = spec.http_url
    return await s.user.request_records_http(s.user.api.at(url), patient)


async def _with_penalty(s: LightSession, denial: str) -> str:
    """The manager's refusal, plus what it cost the requester: the contract warns a registered requester for every
    denied request and suspends the account at its configured number of warnings (the paper's Penalty). Read
    from the requester's own user record, proof-verified at or above the height of the denial."""
    from node.light.errors import LightError

    try:
        await s.follower.sync()
        user = await s.state.user(await s.my_uid())
        config = (await s.state.read(b"cfg")).value
    except LightError:
        return denial  # an unregistered requester is not penalised; nothing more to say
    if not isinstance(user, dict):
        return denial
    warnings = user.get("warnings")
    limit = config.get("max_warnings") if isinstance(config, dict) else "?"
    if not isinstance(warnings, int) or not isinstance(limit, int | str):
        return denial
    if user.get("suspended"):
        return f"{denial}; the contract has suspended this account ({warnings} warnings): an admin must lift it"
    return (
        f"{denial}; the contract gave this account a warning for it: {warnings} of {limit} "
        f"(at {limit} the account is suspended)"
    )


# ---- audit -----------------------------------------------------------------------------------------------------


def cmd_audit(args: argparse.Namespace) -> int:
    try:
        last = parse.positive_int(args.last, "--last")
    except parse.UsageError as exc:
        return fail(str(exc), 2)

    async def main() -> int:
        async with session(args) as s:
            uid = await s.my_uid()
            total, entries = await s.state.audit(uid, last)
            roles: dict[bytes, str] = {}
            rows = []
            for entry in entries:
                requester = entry.get("requester")
                role = None
                if isinstance(requester, bytes):
                    if requester not in roles:
                        user = await s.state.user(requester)
                        roles[requester] = str(user.get("role")) if user else "deleted"
                    role = roles[requester]
                rows.append(
                    {
                        "kind": entry.get("kind"),
                        "requester": _hex(requester),
                        "role": role,
                        "granted": entry.get("granted"),
                        "reason": entry.get("reason"),
                        "time": entry.get("time"),
                        "height": entry.get("height"),
                    }
                )
            height = s.follower.height
        lines = [
            f"{when(r['time'])}  h{r['height']}  {r['kind']:<18} {'granted' if r['granted'] else 'DENIED':<7}  "
            f"{r['requester'] or 'unregistered'} ({r['role'] or '-'})  {r['reason']}"
            for r in rows
        ]
        lines.append(f"{len(rows)} of {total} audit entries (proof-verified at height {height})")
        emit(args, {"uid": uid.hex(), "total": total, "entries": rows, "height": height}, lines)
        return 0

    return run(main)
