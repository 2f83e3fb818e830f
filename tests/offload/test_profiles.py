"""Device profiles, the profiler and the per-device profile store."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from offload.device import EDGE, PHONE, builtin_profile, load_profile, parse_profile
from offload.errors import ProfileError
from offload.profiler import TaskProfile, measure_peak_bytes, profile_task
from offload.store import ProfileStore
from primitives import codec


def test_shipped_profiles_carry_the_paper_figures() -> None:
    phone, edge = builtin_profile(PHONE), builtin_profile(EDGE)
    assert (phone.battery_mah, phone.uplink_bit_s, phone.cpu_hz) == (2870, 11e6, 2.8e9)
    assert (edge.cpu_hz, edge.memory_available_mb, edge.uplink_bit_s) == (2.5e9, 2048, 3.5e9)
    assert phone.joules_to_mah(3.85 * 3.6) == pytest.approx(1.0)


def test_unknown_builtin_profile() -> None:
    with pytest.raises(ProfileError):
        builtin_profile("toaster")


REST = "[radio]\nuplink_bit_s = 1\n[memory]\navailable_mb = 1"


@pytest.mark.parametrize(
    "text",
    [
        "not = [toml",
        '[device]\nname = "x"\nrole = "fridge"',
        '[device]\nname = "x"\nrole = "edge"\n[cpu]\nhz = 1e9',
        '[device]\nname = "x"\nrole = "edge"\n[cpu]\nhz = -1\nipc_factor = 1\n' + REST,
        # A battery-powered device needs power and battery figures to report energy.
        '[device]\nname = "x"\nrole = "device"\n[cpu]\nhz = 1e9\nipc_factor = 1\n' + REST,
    ],
)
def test_malformed_profiles_are_refused(text: str) -> None:
    with pytest.raises(ProfileError):
        parse_profile(text)


def test_profile_file_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(ProfileError):
        load_profile(tmp_path / "missing.toml")


class SleepyTask:
    name = "sleepy/1"

    def run(self, payload: bytes) -> codec.Value:
        self.buffer = bytearray(len(payload) * 100)
        return None


def ticking(*deltas: float) -> Callable[[], float]:
    """A fake clock: each run reads it twice (start, end) and it advances by the next delta in between."""
    now, readings = 0.0, []
    for delta in deltas:
        readings += [now, now + delta]
        now += delta + 1.0
    values = iter(readings)
    return lambda: next(values)


def test_profile_is_the_median_cpu_time_with_wall_time_spread_and_load_beside_it() -> None:
    # Three task runs, then three sealing runs. Under load the wall clock runs far ahead of the CPU clock.
    cpu = ticking(0.5, 0.2, 0.3, 0.01, 0.03, 0.02)
    wall = ticking(5.0, 2.0, 0.9, 0.5, 0.05, 0.04)
    profile = profile_task(
        "k", SleepyTask(), b"x" * 1000, lambda b: b[::-1], reference_hz=2e9, repeats=3,
        clock=wall, cpu_clock=cpu, load=lambda: 14.0,
    )  # fmt: skip
    assert profile.local_s == pytest.approx(0.3)  # the median CPU time: not the minimum, not wall time
    assert profile.local_wall_s == pytest.approx(2.0)
    assert profile.local_spread_s == pytest.approx(0.3)
    assert profile.encrypt_s == pytest.approx(0.02)
    assert profile.encrypt_wall_s == pytest.approx(0.05)
    assert (profile.repeats, profile.load_1m) == (3, 14.0)
    assert profile.input_bits == 8000
    assert profile.cycles == pytest.approx(0.3 * 2e9)
    assert profile.local_peak_bytes >= 100_000
    assert TaskProfile.from_json(profile.to_json()) == profile


def test_real_profile_measures_cpu_time_of_the_task() -> None:
    def spin() -> None:
        deadline = time.thread_time() + 0.02
        while time.thread_time() < deadline:
            pass

    class Spinner:
        name = "spin/1"

        def run(self, payload: bytes) -> codec.Value:
            spin()
            return None

    profile = profile_task("k", Spinner(), b"x", lambda b: b, reference_hz=1e9, repeats=3)
    assert 0.02 <= profile.local_s < 0.2
    assert profile.local_wall_s is not None and profile.local_wall_s >= profile.local_s * 0.9
    assert profile.load_1m is None or profile.load_1m >= 0


def test_peak_memory_sees_numpy_buffers() -> None:
    import numpy as np

    assert measure_peak_bytes(lambda: np.ones(1_000_000)) >= 8_000_000


def profile(key: str, seconds: float = 1.0) -> TaskProfile:
    return TaskProfile(key, "hrv/1", 800, seconds, 10, 0.1, 5, 2.5e9)


def test_store_keeps_profiles_per_device(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path / "db")
    assert store.load("phone-a") == {}
    store.put("phone-a", [profile("hrv/1@10s"), profile("hrv/1@60s", 2.0)])
    store.put("phone-a", [profile("hrv/1@10s", 3.0)])
    store.put("phone-b", [profile("hrv/1@10s", 9.0)])
    reopened = ProfileStore(tmp_path / "db")
    assert reopened.get("phone-a", "hrv/1@10s") == profile("hrv/1@10s", 3.0)
    assert reopened.get("phone-a", "hrv/1@60s") == profile("hrv/1@60s", 2.0)
    assert reopened.get("phone-b", "hrv/1@10s") == profile("hrv/1@10s", 9.0)
    assert reopened.get("phone-b", "hrv/1@60s") is None


@pytest.mark.parametrize("name", ["../escape", "", "a/b", ".hidden"])
def test_store_refuses_names_that_leave_its_directory(tmp_path: Path, name: str) -> None:
    with pytest.raises(ProfileError):
        ProfileStore(tmp_path).load(name)


@pytest.mark.parametrize(
    "content", ["{not json", '{"version": 9, "profiles": {}}', '{"version": 2, "profiles": {"k": 3}}']
)
def test_corrupt_store_is_a_profile_error(tmp_path: Path, content: str) -> None:
    (tmp_path / "dev.json").write_text(content)
    with pytest.raises(ProfileError):
        ProfileStore(tmp_path).load("dev")


def test_wall_clock_store_of_version_1_is_measured_again(tmp_path: Path) -> None:
    old = {"version": 1, "profiles": {"hrv/1@10s": {**profile("hrv/1@10s").to_json()}}}
    (tmp_path / "dev.json").write_text(json.dumps(old))
    store = ProfileStore(tmp_path)
    assert store.load("dev") == {}
    store.put("dev", [profile("hrv/1@60s")])
    assert json.loads((tmp_path / "dev.json").read_text())["version"] == 2
    assert set(store.load("dev")) == {"hrv/1@60s"}
