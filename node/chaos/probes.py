"""Chaos Toolkit probes (`"module": "node.chaos.probes"`): heights, peers, progress, and the invariants.

The steady-state hypothesis of every shipped experiment is "every node answers and the chain makes progress"
before the method, and after it "every node caught up" and `invariants_hold` — the invariant checker over the
whole recorded run. A probe that finds the system unsteady returns False (the tolerance is `true`), so Chaos Toolkit
marks the run deviated.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

from node.chaos import invariants
from node.chaos.chains import drain, fetch_chains
from node.chaos.history import Bounds
from node.chaos.session import ChaosSession, current

log = logging.getLogger("ehrnet.chaos")


def heights() -> dict[str, int | None]:
    session = current()
    return {n: (session.cluster.status_of(n) or {}).get("height") for n in session.cluster.records}


def peers() -> dict[str, int | None]:
    session = current()
    result: dict[str, int | None] = {}
    for name in session.cluster.records:
        status = session.cluster.status_of(name)
        result[name] = len(status["peers"]) if status else None
    return result


def nodes_answer(within_s: float = 15.0) -> bool:
    """True once every node has answered /status, each within `within_s` (a loaded node may be slow once)."""
    session = current()
    pending = set(session.cluster.records)
    deadline = time.monotonic() + float(within_s)
    while pending and time.monotonic() < deadline:
        pending = {n for n in pending if session.cluster.status_of(n) is None}
        if pending:
            time.sleep(0.2)
    if pending:
        log.warning("not answering within %g s: %s", within_s, ", ".join(sorted(pending)))
    return not pending


def chain_progresses(within_s: float = 10.0) -> bool:
    """True if some node's height grows within `within_s` (an idle chain still makes an empty block every 2 s)."""
    start = max((h or 0) for h in heights().values())
    deadline = time.monotonic() + float(within_s)
    while time.monotonic() < deadline:
        if max((h or 0) for h in heights().values()) > start:
            return True
        time.sleep(0.2)
    return False


def nodes_caught_up(timeout_s: float = 60.0) -> bool:
    """True once every node has reached the highest height any node had when the probe started."""
    target = max((h or 0) for h in heights().values())
    deadline = time.monotonic() + float(timeout_s)
    while time.monotonic() < deadline:
        now = heights()
        if all(h is not None and h >= target for h in now.values()):
            return True
        time.sleep(0.2)
    log.warning("not caught up to height %d within %g s: %s", target, timeout_s, heights())
    return False


def invariants_hold(configuration: dict[str, Any], drain_idle_s: float = 10.0, drain_max_s: float = 60.0) -> bool:
    """Stop the load, let the acknowledged transactions drain, read every node's chain and check the history."""
    session = current()
    bounds = Bounds.from_json(configuration["bounds"])
    if session.workload_started:  # after the method (the hypothesis is also checked before it)
        session.workload_stop.set()
    else:  # before the method: nothing has been injected yet, so no evidence can be owed
        bounds = dataclasses.replace(bounds, min_evidence=0)
    return check_now(session, bounds, drain_idle_s, drain_max_s)


def check_now(session: ChaosSession, bounds: Bounds, drain_idle_s: float = 10.0, drain_max_s: float = 60.0) -> bool:
    drained = session.run(drain(session, float(drain_idle_s), float(drain_max_s)))
    if not drained:
        log.warning("acknowledged transactions still not final after the drain")
    history = session.snapshot()
    history.chains = session.run(fetch_chains(session))
    session.history = history
    session.verdict = invariants.check(history, bounds)
    for c in session.verdict.checks:
        log.info("invariant %-45s %s  %s", c.name, "ok" if c.ok else "FAILED", c.detail)
    return bool(session.verdict.ok)
