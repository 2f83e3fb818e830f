"""`ehrnet bench ...`: one command group built in one place (node/cli/bench.py) through argparse's public API, its
benchmarks imported only when they run, and runnable from the installed command outside the repository."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from node.cli.args import HintingParser
from node.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
# Attributes of argparse's parsers and actions that are not part of its documented interface. The one private
# name allowed is `argparse._SubParsersAction[...]` in a type annotation: the type of what `add_subparsers`
# returns, which typeshed names only so.
PRIVATE_ARGPARSE = re.compile(
    r"\.(_actions|_option_string_actions|_subparsers|_registries|_defaults|_action_groups|_mutually_exclusive_groups"
    r"|_positionals|_optionals|_get_optional_actions|_get_positional_actions|_add_action)\b"
    r"|argparse\._(?!SubParsersAction\[)"
)
SOURCE_DIRS = ("node", "bench", "offload", "storage", "consensus", "primitives", "tests")


def _python_sources() -> list[Path]:
    found = [path for folder in SOURCE_DIRS if (ROOT / folder).is_dir() for path in (ROOT / folder).rglob("*.py")]
    return [path for path in found if "node_modules" not in path.parts and path != Path(__file__).resolve()]


def test_no_module_reaches_into_argparse_private_attributes() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _python_sources()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if PRIVATE_ARGPARSE.search(line)
    ]
    assert offenders == []


def test_the_private_attribute_check_sees_what_it_forbids() -> None:
    assert PRIVATE_ARGPARSE.search("    for action in existing._actions:")
    assert PRIVATE_ARGPARSE.search("options = list(parser._option_string_actions)")
    assert PRIVATE_ARGPARSE.search("if isinstance(action, argparse._SubParsersAction):")
    assert not PRIVATE_ARGPARSE.search("    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]")


def test_bench_is_one_group_that_lists_every_benchmark() -> None:
    parser = build_parser()
    assert isinstance(parser, HintingParser)
    bench = parser.subcommands["bench"]
    assert isinstance(bench, HintingParser)
    assert set(bench.subcommands) == {"ledger", "gas", "contracts"}
    args = parser.parse_args(["bench", "gas", "--calibrate"])
    assert (args.bench_cmd, args.calibrate, args.func.__module__) == ("gas", True, "node.cli.bench")
    assert parser.parse_args(["bench", "ledger", "--quick"]).quick


def test_building_the_cli_imports_no_benchmark() -> None:
    probe = "import json, sys, node.cli.main\nnode.cli.main.build_parser()\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    loaded: list[str] = json.loads(out.stdout)
    assert "node.cli.bench" in loaded
    assert [name for name in loaded if name == "bench" or name.startswith("bench.")] == []


def test_bench_gas_prints_gas_per_ehr_function_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "gas", "--json", "--calls", "10"]) == 0
    report = json.loads(capsys.readouterr().out)
    gas = report["gas"]
    for function in ("add_user", "set_policy", "retrieve_ehrs (denied + warning)", "break_glass", "delete_user"):
        assert any(label.startswith(function) and used > 0 for label, used in gas.items()), function
    assert report["throughput"]["set_policy_calls"] == 10


def test_installed_command_runs_the_gas_bench_outside_the_repository(tmp_path: Path) -> None:
    """The console script must not depend on the repository being the working directory."""
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
