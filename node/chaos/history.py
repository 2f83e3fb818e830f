"""What an experiment records, as plain data: the input of the invariant checker.

Times are seconds since the experiment's start (the runner's monotonic clock), so a recorded history can be checked,
stored and re-checked without the cluster. Every type round-trips through JSON (`History.to_json`/`from_json`):
the runner keeps `history.json` beside the journal so a verdict can be reproduced from the files alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Outcome = Literal["acknowledged", "refused", "failed", "indeterminate"]
OUTCOMES: tuple[Outcome, ...] = ("acknowledged", "refused", "failed", "indeterminate")


@dataclass(frozen=True)
class Submission:
    """One transaction offered to one node, and what came of it.

    acknowledged: the node answered 200 with the transaction's hash (the API's promise applies);
    refused: the node answered 4xx/503 (it said no, nothing was promised);
    failed: the request never reached the node (connection refused: nothing can have been accepted);
    indeterminate: the request was sent and no answer came (timeout, connection reset): the node may or may not
    hold it. Only these may end either way; the checker bounds how many there are and where they happen.
    """

    tx: str
    node: str
    t: float
    outcome: Outcome
    detail: str = ""


@dataclass(frozen=True)
class Fault:
    """A fault injected on `nodes` from `start` until it was healed at `end` (None: never healed).

    `affects_liveness` is False for faults the chain must tolerate while they last (one byzantine validator of
    four): their end still opens a recovery window, but they are not expected to halt the chain."""

    kind: str
    nodes: tuple[str, ...]
    start: float
    end: float | None
    affects_liveness: bool = True


@dataclass(frozen=True)
class HeightSample:
    """A node's last final height as seen at time `t` (None: its API did not answer)."""

    t: float
    node: str
    height: int | None


@dataclass(frozen=True)
class ReadAttempt:
    """One read of a pinned record through `node`: whether it was served (bytes verified against the CID), whether
    the reader was authorised, and how many of the record's holders were alive at the time."""

    t: float
    cid: str
    node: str
    served: bool
    authorised: bool
    live_holders: int
    detail: str = ""


@dataclass(frozen=True)
class PinnedRecord:
    """A record stored during the experiment and the nodes found holding it before any fault."""

    cid: str
    holders: tuple[str, ...]


@dataclass(frozen=True)
class BlockSummary:
    """What the checker needs of one final block of one node's chain."""

    height: int
    hash: str
    state_root: str
    txs: tuple[str, ...]
    evidence: int = 0  # transactions of kind `evidence` (proof of a validator's equivocation) in the block


@dataclass
class History:
    submissions: list[Submission] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    samples: list[HeightSample] = field(default_factory=list)
    reads: list[ReadAttempt] = field(default_factory=list)
    pinned: list[PinnedRecord] = field(default_factory=list)
    # node name → its chain, one summary per height it had when collected
    chains: dict[str, list[BlockSummary]] = field(default_factory=dict)
    # when the checks were made (end of the record): a recovery still pending then is judged against it
    ended_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> History:
        return cls(
            submissions=[Submission(**s) for s in doc.get("submissions", [])],
            faults=[Fault(**{**f, "nodes": tuple(f["nodes"])}) for f in doc.get("faults", [])],
            samples=[HeightSample(**s) for s in doc.get("samples", [])],
            reads=[ReadAttempt(**r) for r in doc.get("reads", [])],
            pinned=[PinnedRecord(cid=p["cid"], holders=tuple(p["holders"])) for p in doc.get("pinned", [])],
            chains={
                name: [BlockSummary(**{**b, "txs": tuple(b["txs"])}) for b in blocks]
                for name, blocks in doc.get("chains", {}).items()
            },
            ended_at=float(doc.get("ended_at", 0.0)),
        )


@dataclass(frozen=True)
class Bounds:
    """An experiment's stated limits (in its file, `configuration.bounds`)."""

    # a fault episode's end → first new final block and every faulted node back at the height of that moment
    liveness_s: float
    # how many indeterminate outcomes the run may have in all
    max_indeterminate: int
    # an indeterminate outcome must fall within a fault on its node, widened by this much on each side
    indeterminate_window_s: float = 5.0
    # holders each pinned record must have before the faults begin
    min_holders: int = 1
    # evidence transactions the chain must hold at the end (an equivocating validator must be caught)
    min_evidence: int = 0
    # an acknowledgement is void when its node is wiped this soon after it (before gossip can have passed it on)
    wipe_void_s: float = 1.0

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Bounds:
        return cls(
            liveness_s=float(doc["liveness_s"]),
            max_indeterminate=int(doc["max_indeterminate"]),
            indeterminate_window_s=float(doc.get("indeterminate_window_s", 5.0)),
            min_holders=int(doc.get("min_holders", 1)),
            min_evidence=int(doc.get("min_evidence", 0)),
            wipe_void_s=float(doc.get("wipe_void_s", 1.0)),
        )
