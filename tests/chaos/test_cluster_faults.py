"""`ehrnet cluster pause|resume|wipe` on a real cluster: a paused node answers nothing and comes back; a wiped node
keeps its identity, loses its chain, and syncs it again from its peers."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.cli.main import main
from tests.harness import running_cluster, wait_until

pytestmark = pytest.mark.cluster


def test_pause_resume_and_wipe(tmp_path: Path) -> None:
    with running_cluster(tmp_path / "c") as cluster:
        dd = ["--data-dir", str(tmp_path / "c")]
        assert main(["cluster", "pause", "node2", *dd]) == 0
        assert cluster.paused("node2") and cluster.status_of("node2") is None
        assert main(["cluster", "resume", "node2", *dd]) == 0
        assert not cluster.paused("node2")
        wait_until(lambda: cluster.status_of("node2"), 10, what="node2 answers after resume")

        wait_until(lambda: (cluster.status_of("node1") or {}).get("height", 0) >= 2, 30, what="height 2")
        node3 = Path(cluster.records["node3"].data_dir)
        key_before = (node3 / "node.key").read_bytes()
        assert main(["cluster", "wipe", "node3", "--no-start", *dd]) == 0
        wait_until(lambda: not cluster.alive("node3"), 10, what="node3 gone")
        assert sorted(p.name for p in node3.iterdir()) == ["api.token", "node.key", "node.log"]
        assert main(["cluster", "wipe", "node3", *dd]) == 0
        assert (node3 / "node.key").read_bytes() == key_before
        target = (cluster.status_of("node1") or {})["height"]
        wait_until(lambda: (cluster.status_of("node3") or {}).get("height", 0) >= target, 60, what="node3 resynced")


def test_pause_of_a_stopped_node_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_cluster(tmp_path / "c") as cluster:
        cluster.kill("node4")
        assert main(["cluster", "pause", "node4", "--data-dir", str(tmp_path / "c")]) == 2
        assert "node4 is not running" in capsys.readouterr().err
