"""Versioned VM rules: the gas schedule and limits a block executes under, selected by version number.

Gas is in every contract receipt and so in the receipts root, and a node that syncs re-executes history, so the
prices a chain used at a height can never change: a new schedule is a new version, chosen in genesis
(`Params.vm_version`) and switched at a later height by an admin transaction (`set_vm_version`, system_txs.py).
Version 1 is the original schedule, kept exactly (tests/vm/test_gas_golden.py pins its gas); version 2 charges
every size-dependent step for the work it does, walks included (docs/VM.md "Versions").

The interpreter reads Python's `ast`, whose node classes and parse results differ between minor versions, so
the VM's behaviour is only defined on the minor versions listed here (`check_python`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from types import MappingProxyType

from consensus.vm.gas import DEFAULT_LIMITS, DEFAULT_SCHEDULE, NODE_COSTS, GasSchedule, Limits

# Minor versions of CPython whose `ast` the validator and interpreter were checked against.
SUPPORTED_PYTHON = ((3, 11),)


@dataclass(frozen=True)
class VmRules:
    """Everything that decides a contract transaction's gas and outcome, besides the code and the state.

    `strict_block_gas`: version 1 lets a transaction start while the block's gas is below `max_block_gas` (so a
    block may run to max_block_gas + max_tx_gas); from version 2 a block's total gas may not exceed it."""

    version: int
    schedule: GasSchedule
    limits: Limits
    strict_block_gas: bool


_V1 = VmRules(1, DEFAULT_SCHEDULE, DEFAULT_LIMITS, strict_block_gas=False)

# Version 2 prices, from `python -m bench.vm_calibration` (docs/VM.md "Calibration"): each class's worst case
# within a small multiple of a tight loop's ns per gas.
_V2 = VmRules(
    2,
    replace(
        DEFAULT_SCHEDULE,
        nodes=MappingProxyType({**NODE_COSTS, "Compare": 10}),
        word_classes=MappingProxyType(
            {
                "compare": 1,
                "text": 2,
                "translate": 1,
                "hash": 1,
                "sort": 3,
                "scan": 60,
                "shift": 1,
                "items": 48,
                "int": 1,
            }
        ),
        walk_word=40,
    ),
    DEFAULT_LIMITS,
    strict_block_gas=True,
)

RULES: dict[int, VmRules] = {1: _V1, 2: _V2}
LATEST_VERSION = max(RULES)


def rules_for(version: int) -> VmRules:
    """The rules of `version`; ValueError names the versions this node knows."""
    rules = RULES.get(version)
    if rules is None:
        raise ValueError(f"unknown vm_version {version}; this node knows {sorted(RULES)}")
    return rules


def check_python(version_info: tuple[int, ...] = tuple(sys.version_info[:2])) -> None:
    """Refuse to run contracts on a Python whose `ast` the VM was not checked against (RuntimeError)."""
    if tuple(version_info[:2]) not in SUPPORTED_PYTHON:
        supported = ", ".join(f"{major}.{minor}" for major, minor in SUPPORTED_PYTHON)
        running = ".".join(str(part) for part in version_info[:2])
        raise RuntimeError(
            f"ehrnet's contract VM runs on Python {supported} only (its validator and interpreter depend on that "
            f"version's ast module); this is Python {running}"
        )
