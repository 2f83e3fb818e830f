"""Parsing what a person types into the sharing commands: every error names the option it is about.

Shared by `ehrnet light ...` (node/light/sharing_cli.py) and `ehrnet admin ...` (node/cli/admin.py).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from node.light.errors import LightError

MAX_SCOPE = 4096  # the contract's limit on a policy scope (ehr.contract, MAX_SCOPE)
_RELATIVE = re.compile(r"^\+(\d+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
TASK_NAMES = {"hrv": "hrv/1", "tremor": "tremor/1"}
WINDOW_RANGE_S = (10.0, 600.0)  # offload.workload.WINDOW_RANGE_S, without importing numpy


class UsageError(LightError):
    """A command-line value is malformed; the message starts with the option's name (exit code 2)."""


def public_key(text: str, option: str) -> bytes:
    """A 32-byte Ed25519 public key in hex, or a libp2p peer id (a node's key, e.g. the EHRs manager's)."""
    text = text.strip()
    if text.startswith("12D3KooW"):
        from node.p2p.identity import public_key_of_peer_id

        try:
            return public_key_of_peer_id(text)
        except ValueError as exc:
            raise UsageError(f"{option} {text!r}: not a valid Ed25519 peer id ({exc})") from exc
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise UsageError(f"{option} {text!r}: expected a 64-hex-character Ed25519 public key (or a 12D3KooW… peer id)")
    return raw


def x25519_key(text: str, option: str) -> bytes:
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise UsageError(f"{option} {text!r}: expected a 64-hex-character X25519 public key")
    return raw


def expiry(text: str, now_s: int, option: str = "--expires") -> int:
    """A policy's expiry in Unix seconds: 0 or "never"; "+30m", "+12h", "+7d" from `now_s`; Unix seconds; or an
    ISO 8601 time (UTC unless it names a zone). It must be in the future."""
    text = text.strip()
    if text in ("0", "never"):
        return 0
    relative = _RELATIVE.match(text)
    if relative:
        amount = int(relative.group(1)) * _UNIT_SECONDS[relative.group(2)]
        if amount == 0:
            raise UsageError(f"{option} {text!r}: must be in the future")
        return now_s + amount
    if text.isdigit():
        value = int(text)
    else:
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise UsageError(
                f"{option} {text!r}: expected never, +N[s|m|h|d], Unix seconds or an ISO 8601 time"
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        value = int(when.timestamp())
    if value <= now_s:
        raise UsageError(f"{option} {text!r}: {value} is not in the future (now is {now_s})")
    return value


def scope(text: str, option: str = "--scope") -> str:
    """ "*" (every record) or a comma-separated list of record CIDs, as the contract's set_policy takes it."""
    text = text.strip()
    if text == "*":
        return text
    cids = [part.strip() for part in text.split(",")]
    if not text or any(not c or not c.isalnum() for c in cids):
        raise UsageError(f"{option} {text!r}: expected * or comma-separated record CIDs (see: ehrnet light records)")
    joined = ",".join(cids)
    if len(joined) > MAX_SCOPE:
        raise UsageError(f"{option}: at most {MAX_SCOPE} characters")
    return joined


def tasks(text: str, option: str = "--tasks") -> list[tuple[str, float]]:
    """ "hrv:600,tremor:60" → [("hrv/1", 600.0), ("tremor/1", 60.0)]: task kind and seconds of data."""
    plan = []
    for part in text.split(","):
        name, _, seconds_text = part.strip().partition(":")
        if name not in TASK_NAMES:
            raise UsageError(f"{option}: unknown task {name!r} (expected one of {', '.join(TASK_NAMES)})")
        try:
            seconds = float(seconds_text)
        except ValueError:
            raise UsageError(f"{option}: {part.strip()!r}: expected TASK:SECONDS, e.g. hrv:600") from None
        low, high = WINDOW_RANGE_S
        if not low <= seconds <= high:
            raise UsageError(f"{option}: {part.strip()!r}: seconds must be {low:.0f} to {high:.0f}")
        plan.append((TASK_NAMES[name], seconds))
    return plan


def positive_int(text: str, option: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"{option} {text!r}: expected a positive integer")
    return int(text)
