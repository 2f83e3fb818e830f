"""What a node imports before its API answers: start-up time on a busy machine is mostly imports, so the analysis
libraries (numpy, scipy, matplotlib, heartpy, fhir.resources) stay off the path of `ehrnet node run` for a node
without the edge role, and libp2p off the path of CLI commands that only talk HTTP."""

from __future__ import annotations

import json
import subprocess
import sys

# fhir.resources, not fhir: its -nspkg.pth file puts an empty `fhir` namespace in every interpreter at start-up.
HEAVY = ("numpy", "scipy", "matplotlib", "heartpy", "fhir.resources", "pydantic", "pyswarms")


def _among(loaded: set[str], names: tuple[str, ...]) -> set[str]:
    return {m for m in loaded for n in names if m == n or m.startswith(n + ".")}


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_the_node_start_path_imports_no_analysis_library() -> None:
    # What `python -m node.cli node run` imports before build_node runs: the CLI parser, then the runner and app.
    loaded = _modules_after("import node.cli.main\nnode.cli.main.build_parser()\nimport node.runner")
    assert not _among(loaded, HEAVY)


def test_the_cluster_commands_import_no_libp2p() -> None:
    loaded = _modules_after(
        "import node.cli.main\nnode.cli.main.build_parser()\nimport node.cli.cluster, node.cluster.wait"
    )
    assert not _among(loaded, ("libp2p", "trio", *HEAVY))


def test_a_node_parses_its_arguments_without_the_other_command_groups() -> None:
    code = (
        "import contextlib, io, node.cli.main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    node.cli.main.main(['node', 'run', '--help'])"
    )
    loaded = _modules_after(code)
    assert "node.cli" in loaded
    assert not loaded & {"node.cli.cluster", "node.demo.run", "node.cli.admin", "node.light.cli", "node.cli.storage"}
