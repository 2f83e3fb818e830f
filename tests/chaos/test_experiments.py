"""CI's fault-injection run: `smoke` and the short form of every other shipped experiment (soak is not in CI), each
through `ehrnet chaos run` in its own process, as a user runs them. An experiment passes only if every invariant
held and every fault was injected and healed; the report is in the failure message.

About 10 minutes on 2 cores for the whole module; `pytest -m "not chaos"` leaves it out.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from node.chaos.cli import EXIT_SKIPPED

pytestmark = [pytest.mark.chaos, pytest.mark.cluster]

CI_RUNS = [
    ("smoke", False),
    ("crash-restart", True),
    ("proposer-kill", True),
    ("pause", True),
    ("partition", True),
    ("byzantine", True),
    ("wipe-resync", True),
    ("storage-holder-crash", True),
]


@pytest.mark.timeout(240)
@pytest.mark.parametrize(("name", "short"), CI_RUNS, ids=[n for n, _ in CI_RUNS])
def test_experiment_holds_its_invariants(tmp_path: Path, name: str, short: bool) -> None:
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "node.cli", "chaos", "run", name, "--out", str(out), *(["--short"] if short else [])]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=230, check=False)
    if done.returncode == EXIT_SKIPPED:
        pytest.skip(done.stdout.strip())
    assert done.returncode == 0, f"{name}: exit {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-3000:]}"
    for artefact in ("journal.json", "report.md", "report.txt", "timeline.png", "history.json"):
        assert (out / artefact).exists(), artefact
