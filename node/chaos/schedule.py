"""The seeded fault schedule: from a plan and a seed, the exact list of Chaos Toolkit activities to run.

Chaos Toolkit's methods are static lists, so randomness lives here, before the run: an experiment's method holds
one action, `seeded-fault-schedule` (`node.chaos.actions.fault_schedule`, whose arguments are the plan), and the
control (node/chaos/control.py) replaces it, before the method starts, with the activities this module generates
from the plan and the configuration's `seed`. The same seed and plan always give the same activities (a pure
function of them, `random.Random(seed)`), so a failing run is replayed with `--seed S`, and the journal lists every
fault as its own activity with its own timing. Run without the control, the same action runs the same steps itself.

Plan (all durations in seconds; ranges are [low, high], drawn uniformly and rounded to 0.1 s):
    {"nodes": ["node1", ...], "lead_s": 5, "tail_s": 20, "gap_s": [4, 8],
     "faults": [{"kind": "kill", "count": 2, "hold_s": [3, 6], "targets": ["node2", "node3"]}, ...]}
Kinds: kill, kill2 (two nodes at once: a lost quorum of four), pause, wipe, partition (a random split into two
non-empty groups), gate (the same through the nodes' fault-control gate, without namespaces), disconnect,
proposer-kill (the proposer of the height being decided, found at run time), crash-point (arm the spec's
`point`, default `crash-after-precommit`, on two validators; that one re-sends its recorded precommit after the
restart, while `crash-before-precommit` is the one that can leave the 2-2 lock split), byzantine (restart a node
in an unsafe mode), holder-kill (a node holding the first record stored by `store_records`, found at run time).
The faults are run in a seeded order, each followed by its heal and a gap.
"""

from __future__ import annotations

import random
from typing import Any

MODULE = "node.chaos.actions"
KINDS = (
    "kill",
    "kill2",
    "pause",
    "wipe",
    "partition",
    "gate",
    "disconnect",
    "proposer-kill",
    "crash-point",
    "byzantine",
    "holder-kill",
)


class PlanError(ValueError):
    """The plan is malformed; the message names the field."""


def action(name: str, func: str, pause_after: float = 0.0, **arguments: Any) -> dict[str, Any]:
    activity: dict[str, Any] = {
        "type": "action",
        "name": name,
        "provider": {"type": "python", "module": MODULE, "func": func, "arguments": arguments},
    }
    if pause_after > 0:
        activity["pauses"] = {"after": pause_after}
    return activity


def _draw(rng: random.Random, span: Any, field: str) -> float:
    if isinstance(span, int | float):
        return float(span)
    if not (isinstance(span, list) and len(span) == 2 and all(isinstance(x, int | float) for x in span)):
        raise PlanError(f"{field}: expected a number or [low, high], got {span!r}")
    low, high = float(span[0]), float(span[1])
    if low > high or low < 0:
        raise PlanError(f"{field}: [low, high] needs 0 <= low <= high, got {span!r}")
    return round(rng.uniform(low, high), 1)


def _steps_for(
    kind: str, rng: random.Random, spec: dict[str, Any], nodes: list[str], hold: float
) -> list[dict[str, Any]]:
    targets = list(spec.get("targets", nodes))
    if not targets or any(t not in nodes for t in targets):
        raise PlanError(f"faults[{kind}].targets: must be a non-empty subset of {nodes}, got {targets!r}")
    node = rng.choice(targets)
    if kind == "kill":
        return [
            action(f"kill {node}", "kill_node", hold, node=node),
            action(f"restart {node}", "restart_node", node=node),
        ]
    if kind == "kill2":
        a, b = rng.sample(targets, 2) if len(targets) >= 2 else (targets[0], targets[0])
        return [
            action(f"kill {a}", "kill_node", 0.5, node=a),
            action(f"kill {b}", "kill_node", hold, node=b),
            action(f"restart {a}", "restart_node", node=a),
            action(f"restart {b}", "restart_node", node=b),
        ]
    if kind == "pause":
        return [
            action(f"pause {node}", "pause_node", hold, node=node),
            action(f"resume {node}", "resume_node", node=node),
        ]
    if kind == "wipe":
        return [
            action(f"wipe {node}", "wipe_node", hold, node=node),
            action(f"restart {node}", "restart_node", node=node),
        ]
    if kind in ("partition", "gate"):
        shuffled = rng.sample(nodes, len(nodes))
        cut = rng.randint(1, len(nodes) // 2) if len(nodes) > 1 else 1
        groups = [sorted(shuffled[:cut]), sorted(shuffled[cut:])]
        func = "partition" if kind == "partition" else "gate_partition"
        label = "|".join(",".join(g) for g in groups)
        return [action(f"{kind} {label}", func, hold, groups=groups), action(f"heal {label}", "heal_partition")]
    if kind == "disconnect":
        peer = rng.choice([n for n in nodes if n != node] or [node])
        return [action(f"disconnect {node} from {peer}", "disconnect", hold, node=node, peer=peer)]
    if kind == "proposer-kill":
        return [action("kill the proposer", "kill_proposer", hold), action("restart the proposer", "restart_killed")]
    if kind == "crash-point":
        a, b = rng.sample(targets, 2) if len(targets) >= 2 else (targets[0], targets[0])
        point = str(spec.get("point", "crash-after-precommit"))
        return [
            action(f"arm {point} on {a},{b}", "arm_fault_point", 0.0, nodes=[a, b], point=point),
            action(
                f"await the crash of {a},{b}",
                "await_crash",
                hold,
                nodes=[a, b],
                timeout_s=float(spec.get("within_s", 30)),
            ),
            action("restart the crashed", "restart_killed"),
        ]
    if kind == "holder-kill":
        return [
            action("kill a holder of the stored record", "kill_holder", hold),
            action("restart it", "restart_killed"),
        ]
    if kind == "byzantine":
        mode = str(spec.get("mode", rng.choice(["equivocate", "invalid-block", "malformed"])))
        return [
            action(f"{node} turns byzantine ({mode})", "start_byzantine", hold, node=node, mode=mode),
            action(f"{node} honest again", "restart_node", node=node),
        ]
    raise PlanError(f"faults[].kind: unknown kind {kind!r} (known: {', '.join(KINDS)})")


def generate(plan: dict[str, Any], seed: int) -> list[dict[str, Any]]:
    """The activities for `plan` under `seed`: lead, then each fault with its heal and gap, then the tail."""
    rng = random.Random(seed)
    nodes = list(plan.get("nodes", ["node1", "node2", "node3", "node4"]))
    faults = plan.get("faults")
    if not isinstance(faults, list) or not faults:
        raise PlanError("faults: a non-empty list of {kind, count, hold_s, targets}")
    drawn: list[dict[str, Any]] = []
    for i, spec in enumerate(faults):
        if spec.get("kind") not in KINDS:
            raise PlanError(f"faults[{i}].kind: unknown kind {spec.get('kind')!r} (known: {', '.join(KINDS)})")
        drawn.extend([spec] * int(spec.get("count", 1)))
    if plan.get("shuffle", True):
        rng.shuffle(drawn)
    steps = [action("lead: steady load before the first fault", "wait_seconds", seconds=float(plan.get("lead_s", 5)))]
    for spec in drawn:
        hold = _draw(rng, spec.get("hold_s", 5), f"faults[{spec['kind']}].hold_s")
        fault_steps = _steps_for(spec["kind"], rng, spec, nodes, hold)
        gap = _draw(rng, plan.get("gap_s", 5), "gap_s")
        fault_steps[-1].setdefault("pauses", {})["after"] = gap
        steps.extend(fault_steps)
    steps.append(action("tail: load after the last heal", "wait_seconds", seconds=float(plan.get("tail_s", 15))))
    steps.append(action("stop the workload", "stop_workload"))
    return steps
