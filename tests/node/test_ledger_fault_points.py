"""Fault points (node/faults/points.py): armed only when asked, parsed strictly, and a crash fires exactly at a
precommit for a block at or above the armed height — in a real child process, since it ends the process."""

from __future__ import annotations

import subprocess
import sys

import pytest

from node.faults.points import (
    CRASH_AFTER_PRECOMMIT,
    CRASH_BEFORE_PRECOMMIT,
    ENV_VAR,
    FAULT_EXIT_CODE,
    FaultPointError,
    FaultPoints,
    parse,
)


def test_nothing_is_armed_by_default_and_the_variable_is_parsed_strictly() -> None:
    assert FaultPoints.from_environment({}).armed() == {}
    assert FaultPoints.from_environment({ENV_VAR: "  "}).armed() == {}
    assert FaultPoints.from_environment({ENV_VAR: CRASH_AFTER_PRECOMMIT}).armed() == {CRASH_AFTER_PRECOMMIT: 0}
    assert parse(f"{CRASH_BEFORE_PRECOMMIT}@12") == (CRASH_BEFORE_PRECOMMIT, 12)
    with pytest.raises(FaultPointError, match="unknown fault point 'crash-later'"):
        parse("crash-later")
    with pytest.raises(FaultPointError, match=f"{ENV_VAR}: height"):
        parse(f"{CRASH_AFTER_PRECOMMIT}@-1")
    points = FaultPoints()
    with pytest.raises(FaultPointError, match="min_height"):
        points.arm(CRASH_AFTER_PRECOMMIT, -3)
    points.arm(CRASH_AFTER_PRECOMMIT, 5)
    points.disarm(CRASH_AFTER_PRECOMMIT)
    assert points.armed() == {}


CHILD = """
import sys
from primitives.keys import SigningKey
from consensus.votes import Vote, VoteKind
from node.faults.points import FaultPoints

point, armed_at = sys.argv[1], int(sys.argv[2])
key = SigningKey(bytes(32))
points = FaultPoints()
points.arm(point, armed_at)
def vote(kind, height, block):
    return Vote(kind, "c", height, 0, block, key.public_key).signed(key)
# None of these fire: a prevote, a nil precommit, a precommit below the armed height.
block = b"b" * 32
prevote, nil = vote(VoteKind.PREVOTE, 9, block), vote(VoteKind.PRECOMMIT, 9, None)
harmless_votes = (prevote, nil, vote(VoteKind.PRECOMMIT, 1, block))
for harmless in harmless_votes:
    points.before_vote_persisted(harmless)
    points.after_vote_persisted(harmless)
print("still alive", flush=True)
precommit = vote(VoteKind.PRECOMMIT, 9, block)
points.before_vote_persisted(precommit)
print("persisted", flush=True)
points.after_vote_persisted(precommit)
print("sent", flush=True)
"""


@pytest.mark.parametrize(("point", "printed"), [(CRASH_BEFORE_PRECOMMIT, []), (CRASH_AFTER_PRECOMMIT, ["persisted"])])
def test_the_crash_fires_at_a_precommit_for_a_block_at_the_armed_height(point: str, printed: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, point, "5"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == FAULT_EXIT_CODE, done.stderr
    assert done.stdout.split("\n")[:-1] == ["still alive", *printed]
    assert f"fault point {point}: exiting" in done.stderr and "height 9 round 0" in done.stderr
