"""The seeded schedule is a pure function of plan and seed, and every shipped experiment is a valid Chaos Toolkit
experiment whose schedule expands."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from chaoslib.experiment import ensure_experiment_is_valid

from node.chaos import actions, schedule
from node.chaos.cli import EXPERIMENTS_DIR
from node.chaos.control import SCHEDULE_ACTION, expand_schedule

PLAN = {
    "nodes": ["node1", "node2", "node3", "node4"],
    "lead_s": 2,
    "tail_s": 3,
    "gap_s": [1, 9],
    "faults": [
        {"kind": "kill", "count": 3, "hold_s": [1, 9]},
        {"kind": "pause", "count": 2, "hold_s": [1, 9]},
        {"kind": "partition", "hold_s": 4},
        {"kind": "kill2", "hold_s": 5},
    ],
}
EXPERIMENTS = sorted(EXPERIMENTS_DIR.glob("*.json"))


def test_same_seed_same_schedule_and_another_seed_differs() -> None:
    assert schedule.generate(PLAN, 7) == schedule.generate(PLAN, 7)
    assert schedule.generate(PLAN, 7) != schedule.generate(PLAN, 8)


def test_every_fault_is_followed_by_its_heal() -> None:
    steps = schedule.generate(PLAN, 3)
    funcs = [s["provider"]["func"] for s in steps]
    assert funcs[0] == "wait_seconds" and funcs[-2:] == ["wait_seconds", "stop_workload"]
    assert funcs.count("kill_node") == funcs.count("restart_node") == 3 + 2
    assert funcs.count("pause_node") == funcs.count("resume_node") == 2
    assert funcs.count("partition") == funcs.count("heal_partition") == 1
    for s in steps:  # every step names an action that exists
        assert callable(getattr(actions, s["provider"]["func"]))


def test_a_bad_plan_names_its_field() -> None:
    with pytest.raises(schedule.PlanError, match=r"faults\[0\].kind: unknown kind 'explode'"):
        schedule.generate({"faults": [{"kind": "explode"}]}, 1)
    with pytest.raises(schedule.PlanError, match="gap_s"):
        schedule.generate({"faults": [{"kind": "kill"}], "gap_s": [5, 1]}, 1)
    with pytest.raises(schedule.PlanError, match="targets"):
        schedule.generate({"faults": [{"kind": "kill", "targets": ["node9"]}]}, 1)


def test_shipped_experiments_cover_the_required_set() -> None:
    names = {p.stem for p in EXPERIMENTS}
    required = ["crash-restart", "proposer-kill", "pause", "partition", "byzantine", "wipe-resync"]
    required.append("storage-holder-crash")
    assert {"smoke", "soak"} <= names
    for name in required:
        assert {name, f"{name}-short"} <= names


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_shipped_experiment_is_valid_and_expands(path: Path) -> None:
    experiment = json.loads(path.read_text())
    ensure_experiment_is_valid(copy.deepcopy(experiment))
    assert experiment["configuration"]["bounds"]["liveness_s"] > 0
    assert any(c["provider"]["module"] == "node.chaos.control" for c in experiment["controls"])
    assert [a["name"] for a in experiment["method"]].count(SCHEDULE_ACTION) == 1
    count = expand_schedule(experiment, seed=experiment["configuration"]["seed"])
    assert count > 2 and SCHEDULE_ACTION not in [a["name"] for a in experiment["method"]]
