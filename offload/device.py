"""Device models: the hardware parameters that turn a task profile into time, energy and memory.

A profile is a TOML file (offload/profiles/*.toml ships the paper's two machines, Sec. IV):
    [device]  name, role ("device" or "edge")
    [cpu]     hz (clock), ipc_factor (work per clock relative to the reference core the profiler ran on),
              active_power_w (power drawn while the CPU runs a task; devices only)
    [radio]   uplink_bit_s (rate r), tx_power_w (power while transmitting; devices only), latency_s
    [battery] capacity_mah, voltage_v (devices only)
    [memory]  available_mb
`effective_hz = hz × ipc_factor` is the number of reference-core cycles the machine retires per second, so
the paper's T = D·c / f becomes cycles / effective_hz with cycles measured once on the reference core.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from offload.errors import ProfileError


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    role: str
    cpu_hz: float
    ipc_factor: float
    memory_available_mb: float
    uplink_bit_s: float
    latency_s: float = 0.0
    active_power_w: float = 0.0
    tx_power_w: float = 0.0
    battery_mah: float = 0.0
    battery_voltage_v: float = 0.0

    @property
    def effective_hz(self) -> float:
        return self.cpu_hz * self.ipc_factor

    def joules_to_mah(self, joules: float) -> float:
        """Battery charge for `joules` of energy: mAh = J / (V · 3.6)."""
        if self.battery_voltage_v <= 0:
            raise ProfileError(f"profile {self.name!r} has no battery voltage; it cannot report energy in mAh")
        return joules / (self.battery_voltage_v * 3.6)


def _number(table: dict[str, Any], section: str, key: str, *, required: bool = True) -> float:
    value = table.get(section, {}).get(key)
    if value is None:
        if required:
            raise ProfileError(f"profile lacks [{section}] {key}")
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ProfileError(f"[{section}] {key} must be a non-negative number, got {value!r}")
    return float(value)


def parse_profile(text: str) -> DeviceProfile:
    """A profile from TOML text; malformed or incomplete profiles raise `ProfileError`."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"profile is not valid TOML: {exc}") from exc
    device = table.get("device", {})
    name, role = device.get("name"), device.get("role")
    if not isinstance(name, str) or not name:
        raise ProfileError("profile lacks [device] name")
    if role not in ("device", "edge"):
        raise ProfileError(f"[device] role must be 'device' or 'edge', got {role!r}")
    is_device = role == "device"
    profile = DeviceProfile(
        name=name,
        role=role,
        cpu_hz=_number(table, "cpu", "hz"),
        ipc_factor=_number(table, "cpu", "ipc_factor"),
        memory_available_mb=_number(table, "memory", "available_mb"),
        uplink_bit_s=_number(table, "radio", "uplink_bit_s"),
        latency_s=_number(table, "radio", "latency_s", required=False),
        active_power_w=_number(table, "cpu", "active_power_w", required=is_device),
        tx_power_w=_number(table, "radio", "tx_power_w", required=is_device),
        battery_mah=_number(table, "battery", "capacity_mah", required=is_device),
        battery_voltage_v=_number(table, "battery", "voltage_v", required=is_device),
    )
    if profile.effective_hz <= 0 or profile.uplink_bit_s <= 0:
        raise ProfileError(f"profile {name!r} needs a positive clock, ipc_factor and uplink rate")
    if is_device and profile.battery_voltage_v <= 0:
        raise ProfileError(f"device profile {name!r} needs a positive battery voltage")
    return profile


def load_profile(path: Path) -> DeviceProfile:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"cannot read profile {path}: {exc}") from exc
    return parse_profile(text)


PHONE = "phone-sd845"
EDGE = "edge-xeon-2g5"


def builtin_profile(name: str) -> DeviceProfile:
    """One of the profiles shipped in offload/profiles (PHONE, EDGE)."""
    resource = resources.files("offload").joinpath("profiles", f"{name}.toml")
    if not resource.is_file():
        raise ProfileError(f"no built-in profile named {name!r}")
    return parse_profile(resource.read_text(encoding="utf-8"))
