"""Which directories `ehrnet demo` may wipe: only the ones it created itself.

The demo tells its story from genesis, so it starts from an empty data dir. A data dir is precious (a chain, node
keys, the admin key, stored EHRs), and the same path is easily reused for a hand-made cluster (the README's quick
start and `cluster up` both take `--data-dir`), so the demo never deletes a directory unless a marker file says
the demo made it, or the user asked with `--fresh`. A running cluster is never touched, `--fresh` or not.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from node.cluster.errors import ClusterError

MARKER_NAME = ".ehrnet-demo"
_MARKER_TEXT = "created by `ehrnet demo`: the next `ehrnet demo` with this --data-dir resets this directory\n"


def prepare_demo_dir(data_dir: Path, *, fresh: bool, running_nodes: Callable[[Path], list[str]]) -> None:
    """Leave `data_dir` empty but for the demo's marker, or raise ClusterError saying why not and what to do.

    `running_nodes(data_dir)` names the nodes of a cluster running there (none when there is no cluster).
    """
    if data_dir.exists() and not data_dir.is_dir():
        raise ClusterError(f"--data-dir: {data_dir} is a file, not a directory")
    if data_dir.is_dir() and any(data_dir.iterdir()):
        running = running_nodes(data_dir)
        if running:
            raise ClusterError(
                f"--data-dir: a cluster is running in {data_dir} ({', '.join(running)}); "
                f"stop it with: ehrnet cluster down --data-dir {data_dir}"
            )
        if not (data_dir / MARKER_NAME).is_file() and not fresh:
            raise ClusterError(
                f"--data-dir: {data_dir} is not empty and was not created by the demo; nothing was deleted. "
                "Choose a new directory, or pass --fresh to delete its contents and start from genesis"
            )
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / MARKER_NAME).write_text(_MARKER_TEXT)
