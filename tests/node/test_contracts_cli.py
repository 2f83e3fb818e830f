"""`ehrnet contract ...` without a cluster: argument errors, unreachable nodes. (Deploy and call against real nodes:
test_contracts_cluster.py; `ehrnet bench gas`: test_bench_cli.py.)"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from node.cli.contract import main
from primitives.keys import SigningKey


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_deploy_refuses_a_missing_key_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "c.contract"
    source.write_text("def f():\n    pass\n")
    code = main(["contract", "deploy", str(source), "--key", str(tmp_path / "none.key"), "--node", "http://x"])
    assert code == 2 and "--key" in capsys.readouterr().err


def test_deploy_refuses_bad_init_args(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "admin.key"
    SigningKey.generate().save(key)
    source = tmp_path / "c.contract"
    source.write_text("def f():\n    pass\n")
    url = f"http://127.0.0.1:{_closed_port()}"
    code = main(["contract", "deploy", str(source), "--key", str(key), "--node", url, "--args", "[1.5]"])
    assert code == 2 and "--args" in capsys.readouterr().err
    code = main(["contract", "deploy", str(tmp_path / "missing"), "--key", str(key), "--node", url])
    assert code == 2 and "cannot read" in capsys.readouterr().err


def test_call_names_an_unreachable_node(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    assert main(["contract", "call", "ehr", "get_user", "00", "--view", "--node", url]) == 2
    assert "cannot reach the node" in capsys.readouterr().err
