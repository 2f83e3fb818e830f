"""Fault points: places in the node where an operator's test can make it fail on purpose, at the worst moment.

Random kills rarely land inside the few microseconds that matter for consensus, so a fault-injection run cannot
reproduce, say, "a validator died after signing its precommit but before anyone saw it" by SIGKILLing at random.
A fault point is armed explicitly and then fires exactly there. Nothing is ever armed by default: a node arms a
point only when told to, through

- the environment variable `EHRNET_FAULT_POINT`, read once when the ledger service is created:
  `crash-after-precommit` (the first precommit for a block after start) or `crash-after-precommit@H` (the first
  at a height ≥ H), and likewise `crash-before-precommit[@H]`; or
- `FaultPoints.arm(name, min_height)` on a running node (`LedgerService.faults`), for an operator-only endpoint.

Points:

`crash-after-precommit` — the node exits with `os._exit(FAULT_EXIT_CODE)` (no cleanup, no flush, like a SIGKILL)
right after its precommit for a block has been signed and fsynced by the sign guard and before it is handed to
gossip, so the precommit is lost to everyone else while the node's own record says it was signed. Nil precommits
do not fire it: they lock nothing, and the case this point exists for is a node that precommitted a block (its
peers are now locked on that block, Buchman, Kwon, Milosevic 2018, Algorithm 1 line 36) and comes back without it.
The restarted node still has that precommit on record (the sign guard replays it), and sends it then.

`crash-before-precommit` — the same exit one step earlier: the node's prevote for the block went out, and it dies
as it is about to record its precommit for it, so no precommit of it exists anywhere, not even in its own record.
Two of four validators crashing here while the other two precommit leaves those two locked on a block that only
a re-proposal can finalise — the case a restarted node must be able to accept (docs/CONSENSUS.md, "Re-proposals
after a crash").
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

from consensus.votes import Vote, VoteKind

log = logging.getLogger(__name__)

ENV_VAR = "EHRNET_FAULT_POINT"
CRASH_AFTER_PRECOMMIT = "crash-after-precommit"
CRASH_BEFORE_PRECOMMIT = "crash-before-precommit"
KNOWN_POINTS = (CRASH_AFTER_PRECOMMIT, CRASH_BEFORE_PRECOMMIT)
# Distinct from the usual exit codes, so a test can tell a fault-point crash from any other exit.
FAULT_EXIT_CODE = 86


class FaultPointError(ValueError):
    """A fault point was named or written wrongly; the message names the point or the variable."""


def parse(spec: str) -> tuple[str, int]:
    """`name` or `name@H` → (name, minimum height). Raises FaultPointError for an unknown name or a bad height."""
    name, _, height_text = spec.strip().partition("@")
    if name not in KNOWN_POINTS:
        raise FaultPointError(f"{ENV_VAR}: unknown fault point {name!r} (known: {', '.join(KNOWN_POINTS)})")
    if not height_text:
        return name, 0
    if not height_text.isdigit():
        raise FaultPointError(f"{ENV_VAR}: height after '@' must be a non-negative integer, not {height_text!r}")
    return name, int(height_text)


class FaultPoints:
    """The armed fault points of one node (none unless armed) and the checks the node calls at each point."""

    def __init__(self) -> None:
        self._armed: dict[str, int] = {}  # point name → minimum height at which it fires

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> FaultPoints:
        points = cls()
        spec = (os.environ if environ is None else environ).get(ENV_VAR, "").strip()
        if spec:
            points.arm(*parse(spec))
        return points

    def arm(self, name: str, min_height: int = 0) -> None:
        """Arm `name` to fire at the first opportunity at a height ≥ `min_height`."""
        if name not in KNOWN_POINTS:
            raise FaultPointError(f"unknown fault point {name!r} (known: {', '.join(KNOWN_POINTS)})")
        if min_height < 0:
            raise FaultPointError(f"fault point {name}: min_height must be ≥ 0, not {min_height}")
        self._armed[name] = min_height
        log.warning("fault point %s armed (height ≥ %d): this node will crash on purpose", name, min_height)

    def disarm(self, name: str) -> None:
        self._armed.pop(name, None)

    def armed(self) -> dict[str, int]:
        return dict(self._armed)

    def before_vote_persisted(self, vote: Vote) -> None:
        """Called before the sign guard records `vote`: fires `crash-before-precommit`."""
        self._crash_on_precommit(CRASH_BEFORE_PRECOMMIT, vote, "before persisting")

    def after_vote_persisted(self, vote: Vote) -> None:
        """Called once the sign guard has persisted `vote` and before it is sent: fires `crash-after-precommit`."""
        self._crash_on_precommit(CRASH_AFTER_PRECOMMIT, vote, "after persisting, and before sending,")

    def _crash_on_precommit(self, point: str, vote: Vote, when: str) -> None:
        min_height = self._armed.get(point)
        if min_height is None or vote.kind is not VoteKind.PRECOMMIT or vote.block_hash is None:
            return
        if vote.height < min_height:
            return
        sys.stderr.write(
            f"fault point {point}: exiting {when} the precommit for height {vote.height} round {vote.round}\n"
        )
        sys.stderr.flush()
        os._exit(FAULT_EXIT_CODE)
