"""`ehrnet chaos run --data-dir D --target-running` injects its faults into a cluster that is already running and
leaves it running, healed, afterwards."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from node.chaos.cli import EXPERIMENTS_DIR
from node.chaos.fault_api import FAULT_CONTROL_ENV
from tests.harness import running_cluster

pytestmark = [pytest.mark.chaos, pytest.mark.cluster]


def test_target_running_cluster_is_left_running_and_healed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = json.loads((EXPERIMENTS_DIR / "smoke.json").read_text())
    for activity in doc["method"]:
        if activity["name"] == "seeded-fault-schedule":
            plan = {
                "lead_s": 2,
                "tail_s": 3,
                "gap_s": 2,
                "faults": [{"kind": "pause", "hold_s": 2, "targets": ["node2"]}],
            }
            activity["provider"]["arguments"]["plan"] = plan
    experiment = tmp_path / "pause-once.json"
    experiment.write_text(json.dumps(doc))
    monkeypatch.setenv(FAULT_CONTROL_ENV, "1")
    data_dir = tmp_path / "c"
    with running_cluster(data_dir) as cluster:
        pids = {n: r.pid for n, r in cluster.records.items()}
        argv = [sys.executable, "-m", "node.cli", "chaos", "run", str(experiment), "--out", str(tmp_path / "out")]
        argv += ["--data-dir", str(data_dir), "--target-running"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=240, check=False)
        assert done.returncode in (0, 1), done.stderr[-3000:]
        journal = json.loads((tmp_path / "out" / "journal.json").read_text())
        names = [run["activity"]["name"] for run in journal["run"]]
        assert "pause node2" in names and "resume node2" in names
        assert (tmp_path / "out" / "report.md").exists()
        history = json.loads((tmp_path / "out" / "history.json").read_text())
        assert any(s["outcome"] == "acknowledged" for s in history["submissions"])
        # The same processes still run, none of them stopped, and no cluster was started in the out dir.
        for name, pid in pids.items():
            assert cluster.alive(name) and cluster.records[name].pid == pid
            assert not cluster.paused(name)
        assert not (tmp_path / "out" / "cluster").exists()
