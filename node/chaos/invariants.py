"""The invariant checker: pure functions from a recorded `History` and an experiment's `Bounds` to a verdict.

Safety (the ledger's promises, docs/CONSENSUS.md): one block hash per height across all nodes (no fork), equal
state roots at equal heights, every acknowledged transaction final exactly once, no transaction final twice.
Liveness: after each fault episode (faults whose intervals overlap, taken together: a chain that lost its quorum
recovers when the last of them is healed) the chain makes a new final block and every faulted node is back at the
height of that moment within `Bounds.liveness_s`. Storage: every pinned record had the holders it should, and was
served whenever one of its holders was alive; no read by an unauthorised reader was served.

Indeterminate outcomes (sent, no answer) are the one place a lost transaction could hide, so they are counted,
bounded, and each must fall within a fault on the node it was sent to: an indeterminate answer from a healthy node
is a failure in itself.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from node.chaos.history import BlockSummary, Bounds, Fault, HeightSample, History


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Recovery:
    """How one fault episode ended: seconds from its end to the first new final block (`resumed_s`) and until
    every faulted node was back at the height the chain had at that end (`caught_up_s`); None if never."""

    kinds: tuple[str, ...]
    nodes: tuple[str, ...]
    start: float
    end: float
    resumed_s: float | None
    caught_up_s: float | None

    @property
    def recovery_s(self) -> float | None:
        if self.resumed_s is None or self.caught_up_s is None:
            return None
        return max(self.resumed_s, self.caught_up_s)


@dataclass
class Verdict:
    checks: list[Check] = field(default_factory=list)
    recoveries: list[Recovery] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]


def _examples(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def check_no_fork(chains: dict[str, list[BlockSummary]]) -> tuple[Check, int]:
    hashes: dict[int, set[str]] = {}
    for blocks in chains.values():
        for b in blocks:
            hashes.setdefault(b.height, set()).add(b.hash)
    forked = sorted(h for h, hs in hashes.items() if len(hs) > 1)
    detail = "one hash per height"
    if forked:
        detail = f"heights with more than one hash: {_examples(list(map(str, forked)))}"
    return Check("no fork", not forked, detail), len(forked)


def check_state_roots(chains: dict[str, list[BlockSummary]]) -> Check:
    roots: dict[int, set[str]] = {}
    for blocks in chains.values():
        for b in blocks:
            roots.setdefault(b.height, set()).add(b.state_root)
    differing = sorted(h for h, rs in roots.items() if len(rs) > 1)
    detail = "equal at every height" if not differing else f"differ at heights {_examples(list(map(str, differing)))}"
    return Check("equal state roots", not differing, detail)


def canonical_chain(chains: dict[str, list[BlockSummary]]) -> list[BlockSummary]:
    """One block per height, from whichever node has it (the longest chain wins a fork, for counting only: a fork
    fails its own check)."""
    by_height: dict[int, BlockSummary] = {}
    for _, blocks in sorted(chains.items(), key=lambda kv: -len(kv[1])):
        for b in blocks:
            by_height.setdefault(b.height, b)
    return [by_height[h] for h in sorted(by_height)]


def voided_by_wipe(history: History, tx_nodes: dict[str, tuple[str, float]], window: float) -> set[str]:
    """Acknowledged transactions whose node lost its disk within `window` seconds of acknowledging them: the API
    voids an acknowledgement when the data directory is wiped before the transaction reached a peer (docs/API.md),
    and gossip passes it on within a fraction of a second, so only those this close to the wipe are excused."""
    wipes = [(f.start, n) for f in history.faults if f.kind == "wipe" for n in f.nodes]
    return {tx for tx, (node, t) in tx_nodes.items() if any(n == node and t <= w <= t + window for w, n in wipes)}


def check_transactions(
    history: History, canonical: list[BlockSummary], bounds: Bounds
) -> tuple[list[Check], dict[str, int]]:
    occurrences = Counter(tx for b in canonical for tx in b.txs)
    acked_at = {s.tx: (s.node, s.t) for s in history.submissions if s.outcome == "acknowledged"}
    acknowledged = set(acked_at)
    missing = {tx for tx in acknowledged if occurrences[tx] == 0}
    voided = voided_by_wipe(history, {tx: acked_at[tx] for tx in missing}, bounds.wipe_void_s)
    lost = sorted(missing - voided)
    duplicated = sorted(tx for tx, n in occurrences.items() if n > 1)
    excused = f" ({len(voided)} more voided by a wipe of their node)" if voided else ""
    checks = [
        Check(
            "every acknowledged tx final",
            not lost,
            f"{len(acknowledged)} acknowledged, all final{excused}"
            if not lost
            else f"{len(lost)} of {len(acknowledged)} acknowledged never final{excused}: {_examples(lost)}",
        ),
        Check(
            "no tx final twice",
            not duplicated,
            "none" if not duplicated else f"{len(duplicated)} final more than once: {_examples(duplicated)}",
        ),
    ]
    counts = {
        "acknowledged": len(acknowledged),
        "lost": len(lost),
        "voided_by_wipe": len(voided),
        "duplicated": len(duplicated),
        "final_acknowledged": len(acknowledged) - len(missing),
    }
    return checks, counts


def _faulted_at(faults: list[Fault], node: str, t: float, window: float, ended_at: float) -> bool:
    for f in faults:
        end = f.end if f.end is not None else ended_at
        if node in f.nodes and f.start - window <= t <= end + window:
            return True
    return False


def check_indeterminate(history: History, bounds: Bounds) -> tuple[list[Check], int]:
    indeterminate = [s for s in history.submissions if s.outcome == "indeterminate"]
    unexplained = [
        f"{s.tx[:12]}@{s.node}/{s.t:.1f}s"
        for s in indeterminate
        if not _faulted_at(history.faults, s.node, s.t, bounds.indeterminate_window_s, history.ended_at)
    ]
    checks = [
        Check(
            "indeterminate outcomes bounded",
            len(indeterminate) <= bounds.max_indeterminate,
            f"{len(indeterminate)} (bound {bounds.max_indeterminate})",
        ),
        Check(
            "indeterminate only at faulted nodes",
            not unexplained,
            "all within a fault on their node"
            if not unexplained
            else f"{len(unexplained)} from nodes under no fault: {_examples(unexplained)}",
        ),
    ]
    return checks, len(indeterminate)


def fault_episodes(faults: list[Fault], ended_at: float) -> list[list[Fault]]:
    """Faults grouped by overlapping intervals (an unhealed fault lasts until `ended_at`)."""
    ordered = sorted(faults, key=lambda f: f.start)
    episodes: list[list[Fault]] = []
    episode_end = float("-inf")
    for f in ordered:
        end = f.end if f.end is not None else ended_at
        if episodes and f.start <= episode_end:
            episodes[-1].append(f)
            episode_end = max(episode_end, end)
        else:
            episodes.append([f])
            episode_end = end
    return episodes


def _height_at(samples: list[HeightSample], t: float) -> int:
    """The highest height any node had reported by time `t`."""
    return max((s.height for s in samples if s.t <= t and s.height is not None), default=0)


def recoveries(history: History) -> list[Recovery]:
    samples = sorted(history.samples, key=lambda s: s.t)
    result = []
    for episode in fault_episodes(history.faults, history.ended_at):
        start = min(f.start for f in episode)
        healed = all(f.end is not None for f in episode)
        end = max(f.end if f.end is not None else history.ended_at for f in episode)
        nodes = tuple(sorted({n for f in episode for n in f.nodes}))
        kinds = tuple(sorted({f.kind for f in episode}))
        if not healed:
            result.append(Recovery(kinds, nodes, start, end, None, None))
            continue
        base = _height_at(samples, end)
        resumed = next((s.t - end for s in samples if s.t > end and s.height is not None and s.height > base), None)
        behind = set(nodes)
        caught_up: float | None = 0.0
        for s in samples:
            if not behind:
                break
            if s.t > end and s.node in behind and s.height is not None and s.height >= base:
                behind.discard(s.node)
                caught_up = s.t - end
        if behind:
            caught_up = None
        result.append(Recovery(kinds, nodes, start, end, resumed, caught_up))
    return result


def check_liveness(history: History, bounds: Bounds) -> tuple[Check, list[Recovery]]:
    found = recoveries(history)
    late = []
    for r in found:
        label = f"{'+'.join(r.kinds)} on {','.join(r.nodes)} at {r.start:.1f}s"
        if r.recovery_s is None:
            late.append(f"{label}: not recovered" + (" (never healed)" if r.end >= history.ended_at else ""))
        elif r.recovery_s > bounds.liveness_s:
            late.append(f"{label}: {r.recovery_s:.1f}s")
    detail = (
        f"{len(found)} episode(s), each recovered within {bounds.liveness_s:g}s"
        if not late
        else f"over the {bounds.liveness_s:g}s bound: {_examples(late)}"
    )
    return Check("liveness after heal", not late, detail), found


def check_storage(history: History, bounds: Bounds) -> list[Check]:
    thin = [f"{p.cid[:16]}… ({len(p.holders)})" for p in history.pinned if len(p.holders) < bounds.min_holders]
    unserved = [
        f"{r.cid[:16]}…@{r.node}/{r.t:.1f}s"
        for r in history.reads
        if r.authorised and not r.served and r.live_holders > 0
    ]
    leaked = [f"{r.cid[:16]}…@{r.node}/{r.t:.1f}s" for r in history.reads if r.served and not r.authorised]
    return [
        Check(
            "pinned records replicated",
            not thin,
            f"{len(history.pinned)} record(s), each with ≥ {bounds.min_holders} holder(s)"
            if not thin
            else f"fewer than {bounds.min_holders} holders: {_examples(thin)}",
        ),
        Check(
            "pinned records readable while a holder lives",
            not unserved,
            f"{sum(1 for r in history.reads if r.authorised)} authorised read(s)"
            if not unserved
            else f"{len(unserved)} not served with a holder alive: {_examples(unserved)}",
        ),
        Check(
            "no unauthorised read served",
            not leaked,
            f"{sum(1 for r in history.reads if not r.authorised)} unauthorised attempt(s), none served"
            if not leaked
            else f"{len(leaked)} served: {_examples(leaked)}",
        ),
    ]


def check_evidence(canonical: list[BlockSummary], bounds: Bounds) -> tuple[Check | None, int]:
    found = sum(b.evidence for b in canonical)
    if bounds.min_evidence <= 0:
        return None, found
    ok = found >= bounds.min_evidence
    return Check(
        "equivocation recorded as evidence", ok, f"{found} evidence tx(s) (at least {bounds.min_evidence})"
    ), found


def check(history: History, bounds: Bounds) -> Verdict:
    verdict = Verdict()
    fork_check, forks = check_no_fork(history.chains)
    verdict.checks.append(fork_check)
    verdict.checks.append(check_state_roots(history.chains))
    canonical = canonical_chain(history.chains)
    tx_checks, counts = check_transactions(history, canonical, bounds)
    verdict.checks.extend(tx_checks)
    evidence_check, evidence = check_evidence(canonical, bounds)
    if evidence_check is not None:
        verdict.checks.append(evidence_check)
    indeterminate_checks, indeterminate = check_indeterminate(history, bounds)
    verdict.checks.extend(indeterminate_checks)
    liveness, verdict.recoveries = check_liveness(history, bounds)
    verdict.checks.append(liveness)
    verdict.checks.extend(check_storage(history, bounds))
    outcomes = Counter(s.outcome for s in history.submissions)
    verdict.counts = {
        **counts,
        "submitted": len(history.submissions),
        "refused": outcomes["refused"],
        "failed": outcomes["failed"],
        "indeterminate": indeterminate,
        "forks": forks,
        "evidence": evidence,
        "faults": len(history.faults),
    }
    return verdict
