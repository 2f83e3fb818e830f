"""`ehrnet demo` never deletes a data dir it did not create (a stopped cluster's chain and keys were wiped once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.cli.main import main
from node.cluster.errors import ClusterError
from node.demo.data_dir import MARKER_NAME, prepare_demo_dir


def _nothing_running(_: Path) -> list[str]:
    return []


def _stopped_cluster(data_dir: Path) -> Path:
    """What a stopped hand-made cluster leaves behind: a resolved config, keys, a chain."""
    (data_dir / "keys").mkdir(parents=True)
    (data_dir / "keys" / "admin.key").write_text("precious")
    (data_dir / "network.toml").write_text("[network]\nname = 'mine'\n")
    chain = data_dir / "node1" / "chain.lmdb"
    chain.parent.mkdir()
    chain.write_bytes(b"\x00" * 4096)
    return chain


def test_a_new_directory_is_created_with_the_marker(tmp_path: Path) -> None:
    target = tmp_path / "new" / "demo"
    prepare_demo_dir(target, fresh=False, running_nodes=_nothing_running)
    assert sorted(p.name for p in target.iterdir()) == [MARKER_NAME]


def test_the_demo_resets_a_directory_it_created(tmp_path: Path) -> None:
    prepare_demo_dir(tmp_path / "d", fresh=False, running_nodes=_nothing_running)
    (tmp_path / "d" / "node1").mkdir()
    prepare_demo_dir(tmp_path / "d", fresh=False, running_nodes=_nothing_running)
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [MARKER_NAME]


def test_a_foreign_directory_is_refused_and_kept(tmp_path: Path) -> None:
    chain = _stopped_cluster(tmp_path)
    with pytest.raises(ClusterError, match="--fresh") as refused:
        prepare_demo_dir(tmp_path, fresh=False, running_nodes=_nothing_running)
    assert "nothing was deleted" in str(refused.value)
    assert chain.stat().st_size == 4096
    assert (tmp_path / "keys" / "admin.key").read_text() == "precious"


def test_fresh_deletes_a_foreign_directory_on_request(tmp_path: Path) -> None:
    _stopped_cluster(tmp_path)
    prepare_demo_dir(tmp_path, fresh=True, running_nodes=_nothing_running)
    assert sorted(p.name for p in tmp_path.iterdir()) == [MARKER_NAME]


def test_a_running_cluster_is_never_touched_even_with_fresh(tmp_path: Path) -> None:
    prepare_demo_dir(tmp_path, fresh=False, running_nodes=_nothing_running)
    chain = _stopped_cluster(tmp_path)
    with pytest.raises(ClusterError, match="node1, node3"):
        prepare_demo_dir(tmp_path, fresh=True, running_nodes=lambda _: ["node1", "node3"])
    assert chain.exists()


def test_a_file_in_place_of_the_directory_is_named(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(ClusterError, match="is a file"):
        prepare_demo_dir(tmp_path / "f", fresh=True, running_nodes=_nothing_running)


def test_the_demo_command_refuses_a_stopped_clusters_dir_and_keeps_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cluster", "init", "-n", "4", "--data-dir", str(tmp_path)]) == 0
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert any(p.name == "admin.key" for p in before)
    capsys.readouterr()
    code = main(["demo", "--data-dir", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "--fresh" in err and str(tmp_path) in err
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
