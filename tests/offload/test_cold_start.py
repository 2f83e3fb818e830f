"""Cold start of the offload step: what importing and preparing the analyses loads, and the profile store path.

Each check runs in a fresh interpreter, since what a module imports is only visible before anything else did.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from offload.recordings import ppg_recording
from offload.store import PROFILE_DIR_ENV, default_profile_dir


def loaded_after(code: str) -> set[str]:
    probe = code + "\nimport sys\nprint(' '.join(sorted(sys.modules)))\n"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_heartpy_loads_without_pyplot_or_pkg_resources() -> None:
    loaded = loaded_after("from offload.heartpy_import import import_heartpy\nimport_heartpy().process")
    assert "heartpy" in loaded and "scipy.signal" in loaded
    assert "matplotlib" not in loaded and "matplotlib.pyplot" not in loaded
    assert "pkg_resources" not in loaded


def test_cutting_a_heart_rate_window_imports_neither_heartpy_nor_scipy() -> None:
    loaded = loaded_after(
        "import numpy as np\nfrom offload.workload import make_payload\n"
        "make_payload('hrv/1', 60.0, np.random.default_rng(1))"
    )
    assert "heartpy" not in loaded and "scipy" not in loaded


def test_edge_warm_up_imports_what_the_first_heart_rate_task_needs() -> None:
    loaded = loaded_after("from node.edge.service import _warm_up\n_warm_up()")
    assert {"heartpy", "heartpy.heartpy", "scipy.signal", "scipy.interpolate"} <= loaded
    assert "matplotlib" not in loaded


def test_recordings_equal_heartpys_own_loader() -> None:
    from offload.heartpy_import import import_heartpy

    heartpy = import_heartpy()
    for index in (0, 1, 2):
        data, timer = heartpy.load_exampledata(index)
        mine = ppg_recording(index)
        assert np.array_equal(np.asarray(data, dtype=np.float64), mine.samples)
        if index == 1:
            assert mine.sample_rate_hz == heartpy.get_samplerate_mstimer(timer)
        if index == 2:
            rate = heartpy.get_samplerate_datetime(timer, timeformat="%Y-%m-%d %H:%M:%S.%f")
            assert mine.sample_rate_hz == rate


def test_heartpy_plotting_is_refused_not_silently_broken() -> None:
    code = (
        "from offload.heartpy_import import import_heartpy\n"
        "try:\n    import_heartpy().plotter({}, {})\nexcept RuntimeError as exc:\n    print('refused:', exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("refused:") and "plotting" in out


def test_profile_store_lives_in_the_user_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(PROFILE_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_profile_dir() == tmp_path / "ehrnet" / "profiles"
    monkeypatch.setenv(PROFILE_DIR_ENV, str(tmp_path / "mine"))
    assert default_profile_dir() == tmp_path / "mine"


def test_demo_offload_step_keeps_a_profile_store() -> None:
    import inspect

    import node.demo.run

    source = inspect.getsource(node.demo.run._offload)
    assert "store=ProfileStore(" in source and "default_profile_dir()" in source
