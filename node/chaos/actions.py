"""Chaos Toolkit actions (`"provider": {"type": "python", "module": "node.chaos.actions", "func": ...}`).

Every action works on the open chaos session (node/chaos/session.py): it injects or heals one fault on the
session's cluster and writes it to the fault log, which the invariant checker and the report read. A fault ends
when the node is back, not when the heal was issued: a restart ends its fault once the node's API answers, so
the recovery time measured from there is the ledger's, not the interpreter's start-up.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from typing import Any

from node.chaos import fault_api, schedule
from node.chaos.history import PinnedRecord
from node.chaos.session import ChaosSession, current
from node.chaos.workload import run_reads, run_transactions
from node.client import NodeError
from node.faults.options import BYZANTINE_ENV, UNSAFE_ENV

log = logging.getLogger("ehrnet.chaos")
CRASH_KINDS = {"kill", "wipe", "crash", "proposer-kill", "byzantine", "restart"}


class ActionFailed(RuntimeError):
    """A fault could not be injected or healed; Chaos Toolkit records the activity as failed."""


# ---- pacing and load --------------------------------------------------------------------------------------


def wait_seconds(seconds: float) -> None:
    session = current()
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline and not session.stopping.is_set():
        time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))


def run_workload(rate: float, read_interval_s: float = 2.0, max_duration_s: float = 3600.0) -> dict[str, Any]:
    """Background activity: transactions at `rate`/s and reads of the stored records until `stop_workload`."""
    session = current()
    session.workload_started = True
    session.verdict = session.history = None  # a check made before the method is not the run's
    reads = session.submit(run_reads(session, float(read_interval_s)))
    summary = session.run(run_transactions(session, float(rate), float(max_duration_s)))
    session.workload_stop.set()
    return {**summary, "reads": reads.result(60)}


def stop_workload() -> None:
    current().workload_stop.set()


def store_records(
    count: int = 1, size_bytes: int = 65536, via: str = "node1", min_holders: int = 1, wait_s: float = 30.0
) -> list[dict[str, Any]]:
    """Add `count` records (random bytes standing for encrypted EHRs) through `via` with the node's default
    replication, then wait up to `wait_s` for `min_holders` providers; the holders found are recorded."""
    session = current()
    stored = []
    for i in range(int(count)):
        data = os.urandom(int(size_bytes))
        cid = str(session.cluster.client(via, timeout_s=60).add(data)["cid"])
        session.record_bytes[cid] = data
        holders = _wait_holders(session, cid, int(min_holders), float(wait_s))
        with session.lock:
            session.pinned.append(PinnedRecord(cid, tuple(holders)))
        stored.append({"cid": cid, "holders": holders, "sha256": hashlib.sha256(data).hexdigest(), "index": i})
    return stored


def _wait_holders(session: ChaosSession, cid: str, wanted: int, wait_s: float) -> list[str]:
    by_peer = {r.peer_id: name for name, r in session.cluster.records.items()}
    deadline = time.monotonic() + wait_s
    holders: list[str] = []
    while True:
        for name in session.cluster.records:
            try:
                providers = session.cluster.client(name, timeout_s=5).providers(cid)
            except NodeError:
                continue
            found = sorted({by_peer[p["id"]] for p in providers if p["id"] in by_peer})
            if len(found) > len(holders):
                holders = found
        if len(holders) >= wanted or time.monotonic() > deadline:
            return holders
        time.sleep(0.5)


# ---- process faults ---------------------------------------------------------------------------------------


def kill_node(node: str) -> None:
    session = current()
    session.cluster.kill(node)
    session.open_fault("kill", [node])


def _wait_answering(session: ChaosSession, node: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while session.cluster.status_of(node) is None:
        if not session.cluster.alive(node):
            raise ActionFailed(f"{node} exited while starting; log tail:\n{session.cluster.log_tail(node)}")
        if time.monotonic() > deadline:
            raise ActionFailed(f"{node} did not answer within {timeout_s:g} s of its restart")
        time.sleep(0.05)


def restart_node(node: str, timeout_s: float = 90.0) -> float:
    """(Re)start `node` as an honest node; its crash-like faults end when its API answers. Seconds it took."""
    session = current()
    if session.cluster.alive(node):  # a running (e.g. byzantine) node: its downtime is a fault of its own
        session.cluster.resume(node)
        session.cluster.kill(node)
        session.open_fault("restart", [node])
    started = time.monotonic()
    session.cluster.spawn(node)
    _wait_answering(session, node, float(timeout_s))
    session.close_faults(CRASH_KINDS, node)
    return round(time.monotonic() - started, 2)


def restart_killed(timeout_s: float = 90.0) -> list[str]:
    """Restart every node that a crash-like fault left down."""
    session = current()
    with session.lock:
        down = sorted({n for f in session.faults if f.end is None and f.kind in CRASH_KINDS for n in f.nodes})
    for node in down:
        if not session.cluster.alive(node):
            restart_node(node, timeout_s)
        else:
            session.close_faults(CRASH_KINDS, node)
    return down


def pause_node(node: str) -> None:
    session = current()
    session.cluster.pause(node)
    session.open_fault("pause", [node])


def resume_node(node: str) -> None:
    session = current()
    session.cluster.resume(node)
    session.close_faults({"pause"}, node)


def wipe_node(node: str) -> None:
    """Kill `node` and delete its state but its key; `restart_node` brings it back empty."""
    session = current()
    session.cluster.wipe(node)
    session.open_fault("wipe", [node])


def _proposer(session: ChaosSession) -> str:
    for name in session.cluster.records:
        status = session.cluster.status_of(name)
        if status is None:
            continue
        validators = status["validators"]
        consensus = status["consensus"]
        key = validators[(int(consensus["height"]) + int(consensus["round"])) % len(validators)]
        for other in session.cluster.records:
            other_status = session.cluster.status_of(other)
            if other_status is not None and other_status.get("public_key") == key:
                return other
    raise ActionFailed("no node answered with the consensus height and validator set")


def kill_proposer() -> str:
    """Kill the validator proposing the height being decided now (round-robin over the set, votes.py)."""
    session = current()
    node = _proposer(session)
    session.cluster.kill(node)
    session.open_fault("proposer-kill", [node])
    return node


def kill_holder() -> str:
    """Kill the first holder (by name) of the first record stored by `store_records`."""
    session = current()
    if not session.pinned or not session.pinned[0].holders:
        raise ActionFailed("no stored record with a known holder (run store_records first)")
    node = sorted(session.pinned[0].holders)[0]
    session.cluster.kill(node)
    session.open_fault("kill", [node])
    return node


def arm_fault_point(nodes: list[str], point: str = "crash-after-precommit", ahead: int = 2) -> int:
    """Arm `point` on each node for a height `ahead` of the current one (fault-control route); that height."""
    session = current()
    heights = [h for h in session.latest_heights().values() if h is not None]
    min_height = (max(heights) if heights else 0) + int(ahead)
    for node in nodes:
        fault_api.arm(session.cluster, node, point, min_height)
    return min_height


def await_crash(nodes: list[str], timeout_s: float = 30.0) -> list[str]:
    """Wait until each armed node has exited at its fault point; each becomes a `crash` fault."""
    session = current()
    deadline = time.monotonic() + float(timeout_s)
    pending = set(nodes)
    while pending and time.monotonic() < deadline:
        for node in sorted(pending):
            if not session.cluster.alive(node):
                session.open_fault("crash", [node])
                pending.discard(node)
        time.sleep(0.05)
    if pending:
        raise ActionFailed(f"armed fault point never fired on {', '.join(sorted(pending))} within {timeout_s:g} s")
    return sorted(nodes)


def start_byzantine(node: str, mode: str, timeout_s: float = 90.0) -> None:
    """Restart `node` in an unsafe byzantine mode; `restart_node` makes it honest again."""
    session = current()
    session.cluster.resume(node)
    session.cluster.kill(node)
    session.open_fault("restart", [node])  # down while it restarts: a crash like any other
    session.cluster.spawn(node, extra_env={BYZANTINE_ENV: mode, UNSAFE_ENV: "1"})
    _wait_answering(session, node, float(timeout_s))
    # The byzantine spell starts the instant the restart ends: one fault episode, not two.
    ended = session.close_faults({"restart"}, node)
    session.open_fault("byzantine", [node], affects_liveness=False, at=ended[-1].end if ended else None, mode=mode)


# ---- network faults ---------------------------------------------------------------------------------------


def _smallest(groups: list[list[str]]) -> list[str]:
    sizes = [len(g) for g in groups]
    return sorted(groups[sizes.index(min(sizes))])


def partition(groups: list[list[str]]) -> None:
    """Cut the links between the groups' network namespaces (a cluster run with `network: netns`)."""
    session = current()
    if session.netns is None:
        raise ActionFailed("partition needs the cluster in network namespaces (configuration network: netns)")
    session.netns.partition(groups)
    session.open_fault("partition", _smallest(groups), groups=groups)


def gate_partition(groups: list[list[str]]) -> None:
    """The same split through each node's fault-control gate: every node refuses the peers of other groups."""
    session = current()
    for group in groups:
        others = [session.cluster.records[n].peer_id for g in groups if g is not group for n in g]
        for node in group:
            fault_api.gate(session.cluster, node, others)
            session.gated.add(node)
    session.open_fault("gate", _smallest(groups), groups=groups)


def heal_partition() -> None:
    session = current()
    if session.netns is not None:
        session.netns.heal()
    for node in sorted(session.gated):
        fault_api.gate(session.cluster, node, [])
    session.gated.clear()
    session.close_faults({"partition", "gate"})


def disconnect(node: str, peer: str) -> None:
    """Close `node`'s connection to `peer` once; redialling must restore it."""
    session = current()
    fault_api.disconnect(session.cluster, node, session.cluster.records[peer].peer_id)
    session.open_fault("disconnect", [node, peer])
    session.close_faults({"disconnect"}, node)


# ---- whole-schedule forms ---------------------------------------------------------------------------------


def heal_all(timeout_s: float = 90.0) -> None:
    """Rollback: resume, un-gate and heal everything, and restart every node a fault left down."""
    session = current()
    session.heal_everything()
    restart_killed(timeout_s)


def fault_schedule(plan: dict[str, Any], seed: int) -> int:
    """The seeded schedule as one action (used when the control did not expand it into the method)."""
    steps = schedule.generate(plan, int(seed))
    for step in steps:
        provider = step["provider"]
        globals()[provider["func"]](**provider.get("arguments", {}))
        wait_seconds(float(step.get("pauses", {}).get("after", 0.0)))
    return len(steps)
