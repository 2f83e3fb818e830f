"""The device's profile database (paper Sec. III-A: profiles are "kept in a database on the device").

One JSON file per device under a directory, `<device>.json` = {"version": 2, "profiles": {key: profile}}, so a
decision reuses what was measured before instead of re-running tasks. Writes are atomic (temp file + rename).
Version 1 stored wall-clock minima, which measured the machine's load as much as the task (offload/profiler.py);
a version-1 file is treated as empty, so its profiles are measured again (as CPU time) and the file rewritten.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from offload.errors import ProfileError
from offload.profiler import TaskProfile

PROFILE_DIR_ENV = "EHRNET_PROFILE_DIR"
_VERSION = 2
_STALE_VERSIONS = (1,)
_DEVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ProfileStore:
    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def _path(self, device: str) -> Path:
        # The name becomes a file name: refuse anything that could leave the directory.
        if not _DEVICE_NAME.match(device):
            raise ProfileError(f"device name {device!r} must be 1-64 of [A-Za-z0-9._-]")
        return self._directory / f"{device}.json"

    def load(self, device: str) -> dict[str, TaskProfile]:
        """Every stored profile of `device`, by key (empty when nothing was stored yet)."""
        path = self._path(device)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ProfileError(f"cannot read profile store {path}: {exc}") from exc
        if isinstance(raw, dict) and raw.get("version") in _STALE_VERSIONS:
            return {}
        if not isinstance(raw, dict) or raw.get("version") != _VERSION or not isinstance(raw.get("profiles"), dict):
            raise ProfileError(f"{path} is not a version-{_VERSION} profile store")
        return {key: TaskProfile.from_json(value) for key, value in raw["profiles"].items()}

    def get(self, device: str, key: str) -> TaskProfile | None:
        return self.load(device).get(key)

    def put(self, device: str, profiles: list[TaskProfile]) -> None:
        """Add or replace profiles of `device`."""
        path = self._path(device)
        merged = self.load(device)
        merged.update({profile.key: profile for profile in profiles})
        body = {"version": _VERSION, "profiles": {key: p.to_json() for key, p in sorted(merged.items())}}
        self._directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(body, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)


def default_profile_dir() -> Path:
    """Where this machine's task profiles are kept between runs (they describe the machine, not a cluster):
    $EHRNET_PROFILE_DIR, else $XDG_CACHE_HOME/ehrnet/profiles, else ~/.cache/ehrnet/profiles."""
    explicit = os.environ.get(PROFILE_DIR_ENV)
    if explicit:
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "ehrnet" / "profiles"
