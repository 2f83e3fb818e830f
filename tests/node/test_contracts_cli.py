"""`ehrnet contract ...` and `ehrnet bench gas` without a cluster: argument errors, unreachable nodes, gas figures.
(Deploy and call against real nodes: test_contracts_cluster.py.)"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from consensus.keys import SigningKey
from node.cli.contract import main


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_bench_gas_prints_gas_per_ehr_function_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "gas", "--json", "--calls", "10"]) == 0
    report = json.loads(capsys.readouterr().out)
    gas = report["gas"]
    for function in ("add_user", "set_policy", "retrieve_ehrs (denied + warning)", "break_glass", "delete_user"):
        assert any(label.startswith(function) and used > 0 for label, used in gas.items()), function
    assert report["throughput"]["set_policy_calls"] == 10


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


def test_installed_command_runs_the_gas_bench_outside_the_repository(tmp_path: Path) -> None:
    """The console script must not depend on the repository being the working directory."""
    import json
    import subprocess
    import sys

    ehrnet = Path(sys.executable).with_name("ehrnet")
    result = subprocess.run(
        [str(ehrnet), "bench", "gas", "--json", "--calls", "3"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "add_user" in json.loads(result.stdout)["gas"]
