"""Which VM rules a height executes under: the genesis `vm_version`, then any switches admins scheduled.

The schedule lives in the state tree under `sys/vm_versions` as [[activation_height, version], ...], sorted; it
is written only by the `set_vm_version` system transaction, so a chain that never switched has no such key and
its state root is what it was before versions existed. A switch always activates at a later height than the
block that holds it, so every validator knows a height's rules before executing it, from the parent's state.
"""

from __future__ import annotations

from consensus.state import Getter, WorkingState
from consensus.vm.versions import VmRules, rules_for
from primitives import codec

VM_VERSIONS_KEY = b"sys/vm_versions"


def vm_version_schedule(get: Getter) -> list[tuple[int, int]]:
    raw = get(VM_VERSIONS_KEY)
    if raw is None:
        return []
    value = codec.decode(raw)
    if not isinstance(value, list):
        raise ValueError("stored vm version schedule is corrupt")
    schedule: list[tuple[int, int]] = []
    for entry in value:
        if not (isinstance(entry, list) and len(entry) == 2):
            raise ValueError("stored vm version schedule is corrupt")
        height, version = entry
        if not (isinstance(height, int) and isinstance(version, int)):
            raise ValueError("stored vm version schedule is corrupt")
        schedule.append((height, version))
    return schedule


def schedule_vm_version(state: WorkingState, activation_height: int, version: int) -> None:
    """Switch to `version` from `activation_height` on; a switch scheduled earlier for that height or later is
    replaced (the latest admin decision wins, as with validator set changes)."""
    kept = [(h, v) for h, v in vm_version_schedule(state.get) if h < activation_height]
    kept.append((activation_height, version))
    state.set(VM_VERSIONS_KEY, codec.encode([[h, v] for h, v in kept]))


def vm_version_at(get: Getter, height: int, genesis_version: int) -> int:
    version = genesis_version
    for activation, scheduled in vm_version_schedule(get):
        if activation <= height:
            version = scheduled
    return version


def vm_rules_at(get: Getter, height: int, genesis_version: int) -> VmRules:
    return rules_for(vm_version_at(get, height, genesis_version))
