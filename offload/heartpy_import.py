"""Import heartpy without what ehrnet never uses from it: its plotting helpers and pkg_resources.

`import heartpy` runs heartpy/__init__.py, which imports every submodule: `heartpy.visualizeutils` imports
matplotlib.pyplot (~0.7 s and a GUI-backend probe on a 2-core machine) and `heartpy.datautils` imports
pkg_resources (~0.2–0.5 s, deprecated) only to find its own example files. The analysis (`heartpy.process`)
needs neither. So, before the first import, `import_heartpy` places two stand-ins in `sys.modules`:
  * `heartpy.visualizeutils`: the four plotting names heartpy re-exports, each raising if called;
  * `pkg_resources` (only while heartpy loads, and only if nothing loaded the real one yet): a
    `resource_filename` that resolves a path inside the named package, which is all heartpy asks of it.
The pkg_resources stand-in is removed again right after, so any later `import pkg_resources` gets the real
module. Check with `python -X importtime -c "from offload.heartpy_import import import_heartpy; import_heartpy()"`.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import types
from pathlib import Path
from typing import Any, NoReturn

_PLOTTING = ("plotter", "segment_plotter", "plot_poincare", "plot_breathing")
_lock = threading.Lock()


def _no_plotting(*args: object, **kwargs: object) -> NoReturn:
    raise RuntimeError("ehrnet loads heartpy without its plotting helpers (offload/heartpy_import.py)")


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package.split(".")[0])
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"no package {package!r}")
    return Path(next(iter(spec.submodule_search_locations)))


def _resource_filename(package: str, resource: str) -> str:
    return str(_package_dir(package) / resource)


def heartpy_data_dir() -> Path:
    """heartpy's shipped example recordings (heartpy/data), found without importing heartpy."""
    return _package_dir("heartpy") / "data"


def import_heartpy() -> Any:
    """The heartpy module, imported (once) without matplotlib.pyplot and pkg_resources."""
    with _lock:
        if "heartpy" in sys.modules:
            return sys.modules["heartpy"]
        plotting = types.ModuleType("heartpy.visualizeutils")
        for name in _PLOTTING:
            setattr(plotting, name, _no_plotting)
        sys.modules["heartpy.visualizeutils"] = plotting
        stand_in = None
        if "pkg_resources" not in sys.modules:
            stand_in = types.ModuleType("pkg_resources")
            stand_in.resource_filename = _resource_filename  # type: ignore[attr-defined]
            sys.modules["pkg_resources"] = stand_in
        try:
            import heartpy
        finally:
            if stand_in is not None and sys.modules.get("pkg_resources") is stand_in:
                del sys.modules["pkg_resources"]
        return heartpy
