"""Round steps and the timeouts that move a Tendermint round along when messages do not arrive.

Algorithm 1 (Buchman, Kwon, Milosevic 2018) schedules OnTimeoutPropose, OnTimeoutPrevote and OnTimeoutPrecommit
with durations that grow with the round number; the paper's liveness proof (§5) needs them to grow so that
after GST they eventually exceed the real message delay. Here each grows linearly: base + round × delta.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Step(enum.IntEnum):
    """The paper's step_p; order matters (line 36 fires "while step_p ≥ prevote")."""

    PROPOSE = 1
    PREVOTE = 2
    PRECOMMIT = 3


@dataclass(frozen=True)
class TimeoutParams:
    """Timeout durations in seconds: the timeout for `step` in round r is base + r × delta."""

    propose: float = 3.0
    propose_delta: float = 0.5
    prevote: float = 1.0
    prevote_delta: float = 0.5
    precommit: float = 1.0
    precommit_delta: float = 0.5

    def __post_init__(self) -> None:
        for name in ("propose", "prevote", "precommit"):
            if getattr(self, name) <= 0 or getattr(self, name + "_delta") < 0:
                raise ValueError(f"timeout {name} must be positive and its delta non-negative")

    def duration(self, step: Step, round_: int) -> float:
        base, delta = {
            Step.PROPOSE: (self.propose, self.propose_delta),
            Step.PREVOTE: (self.prevote, self.prevote_delta),
            Step.PRECOMMIT: (self.precommit, self.precommit_delta),
        }[step]
        return base + round_ * delta


@dataclass(frozen=True)
class Timeout:
    """Which timeout fired: the shell hands this back to `on_timeout` when its `at` time has come."""

    height: int
    round: int
    step: Step
