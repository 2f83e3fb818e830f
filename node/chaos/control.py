"""The Chaos Toolkit control that every shipped experiment declares (`"controls": [{"name": "ehrnet", "provider":
{"type": "python", "module": "node.chaos.control"}}]`).

It extends Chaos Toolkit with what an experiment on ehrnet needs around its method, which the experiment format
itself cannot say: before the experiment it brings a cluster up (or attaches to a running one) with fault control
enabled, opens the chaos session and replaces the `seeded-fault-schedule` action with the activities generated from
the seed (node/chaos/schedule.py); after it, it writes history.json, the report and the timeline; and its cleanup
closes the session (nothing paused, gated, partitioned or left running). Ctrl-C and SIGTERM first stop the
workload, so Chaos Toolkit's wait for background activities ends at once.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
from pathlib import Path
from typing import Any

from chaoslib.exceptions import InterruptExecution

from node.chaos import report, schedule
from node.chaos.fault_api import FAULT_CONTROL_ENV
from node.chaos.history import Bounds
from node.chaos.session import ChaosSession, close_current, last, open_session
from node.cluster.config import generate_network, load_network
from node.cluster.errors import ClusterError
from node.cluster.local import Cluster
from node.cluster.network_init import RESOLVED_NAME

log = logging.getLogger("ehrnet.chaos")
SCHEDULE_ACTION = "seeded-fault-schedule"

# What the last run produced, for `ehrnet chaos run` (which reads it after run_experiment returns).
RESULT: dict[str, Any] = {}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "experiment"


def expand_schedule(experiment: dict[str, Any], seed: int) -> int:
    """Replace the schedule action in the method (in place: the journal shares the list) by its activities."""
    method: list[dict[str, Any]] = experiment.get("method", [])
    expanded: list[dict[str, Any]] = []
    count = 0
    for activity in method:
        if activity.get("name") == SCHEDULE_ACTION:
            steps = schedule.generate(activity["provider"]["arguments"]["plan"], seed)
            expanded.extend(steps)
            count += len(steps)
        else:
            expanded.append(activity)
    method[:] = expanded
    return count


def _start_cluster(configuration: dict[str, Any], out_dir: Path) -> ChaosSession:
    nodes = int(configuration.get("nodes", 4))
    timeout = float(configuration.get("startup_timeout_s", 90))
    data_dir_value = str(configuration.get("data_dir") or "")
    # Every node we start (or restart) serves the operator-only fault-control routes (gate, disconnect, arm).
    os.environ[FAULT_CONTROL_ENV] = "1"
    if configuration.get("target_running"):
        data_dir = Path(data_dir_value).resolve()
        if not (data_dir / RESOLVED_NAME).exists():
            raise InterruptExecution(f"data_dir: no cluster in {data_dir}")
        cluster = Cluster(load_network(data_dir / RESOLVED_NAME), data_dir)
        down = [n for n in cluster.records if not cluster.alive(n)]
        if down:
            raise InterruptExecution(f"data_dir: the cluster in {data_dir} has nodes down: {', '.join(down)}")
        return ChaosSession(cluster, started_cluster=False, out_dir=out_dir)
    data_dir = Path(data_dir_value).resolve() if data_dir_value else out_dir / "cluster"
    if not data_dir_value and data_dir.exists():
        shutil.rmtree(data_dir)  # ours, from an earlier run into the same --out
    template = generate_network(nodes, name=f"chaos{nodes}")
    try:
        if configuration.get("network") == "netns":
            try:
                from node.cluster.netns import NamespaceNetwork
                from node.cluster.netns_cluster import start_netns_cluster
            except ImportError as exc:
                RESULT["skipped"] = f"needs network namespaces: {exc}"
                raise InterruptExecution(RESULT["skipped"]) from exc

            available, reason = NamespaceNetwork.available()
            if not available:
                RESULT["skipped"] = f"needs network namespaces: {reason}"
                raise InterruptExecution(RESULT["skipped"])
            net = NamespaceNetwork()
            cluster = start_netns_cluster(template, data_dir, net, timeout)
            return ChaosSession(cluster, started_cluster=True, out_dir=out_dir, netns=net)
        from node.cli.cluster import start_cluster

        cluster = start_cluster(template, data_dir, timeout)
    except ClusterError as exc:
        raise InterruptExecution(f"the cluster did not start: {exc}") from exc
    return ChaosSession(cluster, started_cluster=True, out_dir=out_dir)


def _install_stop_on_signal(session: ChaosSession) -> None:
    """Ctrl-C / SIGTERM: stop the workload first, then let Chaos Toolkit's own handling run."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)

        def handler(signum: int, frame: Any, previous: Any = previous) -> None:
            session.workload_stop.set()
            session.stopping.set()
            if callable(previous):
                previous(signum, frame)
            else:
                raise KeyboardInterrupt

        signal.signal(sig, handler)


def before_experiment_control(context: dict[str, Any], configuration: dict[str, Any] | None = None, **_: Any) -> None:
    configuration = configuration or {}
    RESULT.clear()
    out_dir = Path(str(configuration.get("out_dir") or f"chaos-out/{_slug(context.get('title', ''))}")).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    seed = int(configuration.get("seed", 1))
    try:
        steps = expand_schedule(context, seed)
    except (schedule.PlanError, KeyError, TypeError) as exc:
        raise InterruptExecution(f"seeded-fault-schedule: bad plan: {exc}") from exc
    (out_dir / "schedule.json").write_text(json.dumps(context.get("method", []), indent=2) + "\n")
    log.info("seed %d: %d scheduled activities (schedule.json)", seed, steps)
    try:
        session = open_session(_start_cluster(configuration, out_dir))
    except InterruptExecution:
        raise
    except Exception as exc:  # Chaos Toolkit would log any other error and run the method without a cluster
        raise InterruptExecution(f"the cluster did not start: {type(exc).__name__}: {exc}") from exc
    _install_stop_on_signal(session)
    RESULT.update(out_dir=str(out_dir), seed=seed, data_dir=str(session.cluster.data_dir))


def after_experiment_control(
    context: dict[str, Any], state: dict[str, Any] | None = None, configuration: dict[str, Any] | None = None, **_: Any
) -> None:
    session = last()
    journal = state or {}
    if session is None:
        return
    session.workload_stop.set()
    if session.verdict is None and session.workload_started and configuration and not session.stopping.is_set():
        # The after-method hypothesis stopped at an earlier failing probe: the report still gets its verdict.
        from node.chaos.probes import check_now

        check_now(session, Bounds.from_json(configuration["bounds"]))
    failed = [
        f"{run['activity'].get('name')}: {_failure(run)}"
        for run in journal.get("run", []) + journal.get("rollbacks", [])
        if run.get("status") == "failed"
    ]
    history = session.history or session.snapshot()
    title = str(context.get("title", "experiment"))
    text = report.render(title, RESULT.get("seed", 0), str(journal.get("status")), session.verdict, failed)
    out_dir = session.out_dir
    (out_dir / "history.json").write_text(json.dumps(history.to_json()) + "\n")
    report.write(out_dir, text, history, title)
    RESULT.update(report=text, verdict=session.verdict, failed_activities=failed, status=journal.get("status"))


def _failure(run: dict[str, Any]) -> str:
    """A failed activity's exception message (the journal keeps the whole traceback as a list of lines)."""
    exception = run.get("exception")
    if isinstance(exception, list) and exception:
        return str(exception[-1]).strip()[:1000]
    return str(exception or run.get("output"))[:1000]


def cleanup_control() -> None:
    close_current()
