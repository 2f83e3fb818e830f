"""Gas used by each EHR-contract function (the paper's "smart contract cost") and VM call throughput.

    .venv/bin/python -m bench.gas [--json] [--calls N]

Prints, per function, the gas one representative call uses (deterministic: the same on every machine), then
set_policy throughput on one core (CPU time of this process, so other load on the machine does not count) and
the interpreter's time per unit of gas, which is what the gas schedule is calibrated against (gas.py: 1 gas is
meant to be ~100 ns).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence

from consensus.contracts import EHR_CONTRACT_NAME, ehr_source
from consensus.vm import VM, BlockInfo, MemoryStorage, Receipt
from consensus.vm.versions import LATEST_VERSION, rules_for
from primitives import codec
from primitives.keys import SigningKey

GAS_LIMIT = 5_000_000
META = b"\x11" * 32


def _pk(label: str) -> bytes:
    return SigningKey(label.encode().ljust(32, b".")[:32]).public_key


class _Scenario:
    """A fresh EHR contract with one user per role; `run` makes a call and records its gas under a label."""

    def __init__(self, version: int = LATEST_VERSION) -> None:
        rules = rules_for(version)
        self.vm = VM(rules.schedule, rules.limits)
        self.state = MemoryStorage()
        self.height = 1
        self.gas: dict[str, int] = {}
        self.pk = {label: _pk(label) for label in ("admin", "manager", "doctor", "carer", "patient", "spare")}
        deployed = self.vm.deploy(
            self.state,
            self.pk["admin"],
            ehr_source(),
            [[self.pk["admin"]]],
            block=self.block,
            gas_limit=GAS_LIMIT,
            name=EHR_CONTRACT_NAME,
        )
        self._record("deploy (with init)", deployed)

    @property
    def block(self) -> BlockInfo:
        return BlockInfo(self.height, 1_000 + self.height)

    def _record(self, label: str, receipt: Receipt) -> Receipt:
        if not receipt.ok:
            raise RuntimeError(f"{label}: {receipt.status} {receipt.error}")
        self.gas.setdefault(label, receipt.gas_used)
        return receipt

    def run(self, sender: str, func: str, *args: codec.Value, label: str | None = None) -> Receipt:
        self.height += 1
        receipt = self.vm.call(
            self.state, self.pk[sender], EHR_CONTRACT_NAME, func, list(args), block=self.block, gas_limit=GAS_LIMIT
        )
        return self._record(label or func, receipt)

    def view(self, func: str, *args: codec.Value) -> Receipt:
        receipt = self.vm.view(self.state, EHR_CONTRACT_NAME, func, list(args), block=self.block)
        return self._record(f"{func} (view)", receipt)


def measure_gas(version: int = LATEST_VERSION) -> dict[str, int]:
    """Gas per EHR-contract function under VM `version`, from one scripted session that touches every function."""
    s = _Scenario(version)
    pk = s.pk
    enc = b"\x22" * 32
    s.run("admin", "add_user", pk["manager"], "ehr_manager", enc, "")
    s.run("admin", "add_user", pk["doctor"], "doctor", enc, "")
    s.run("admin", "add_user", pk["carer"], "carer", enc, "")
    s.run("admin", "add_user", pk["patient"], "patient", enc, "area-1")
    s.run("admin", "add_user", pk["spare"], "carer", enc, "")
    for i in range(3):
        s.run("manager", "register_ehr", pk["patient"], f"bafy-record-{i}", META)
    s.run("admin", "set_policy", pk["patient"], pk["doctor"], "*", 0)
    s.run("patient", "set_policy", pk["patient"], pk["carer"], "bafy-record-1", 0, label="set_policy (by patient)")
    s.view("policy_list", pk["patient"])
    s.run("doctor", "retrieve_ehrs", pk["patient"], label="retrieve_ehrs (granted, 3 CIDs)")
    s.run("spare", "retrieve_ehrs", pk["patient"], label="retrieve_ehrs (denied + warning)")
    s.run("admin", "revoke_policy", pk["patient"], pk["carer"])
    s.run("admin", "penalty", pk["spare"], "unauthorised request")
    s.run("admin", "reinstate", pk["spare"])
    s.run("admin", "set_max_warnings", 3)
    s.run("doctor", "break_glass", pk["patient"], "unconscious patient")
    s.run("admin", "review_break_glass", 1, "misuse")
    s.view("audit", pk["patient"], 0, 10)
    s.view("get_user", pk["doctor"])
    new = _pk("doctor-2")
    s.run("doctor", "rotate_key", new)
    s.pk["doctor"] = new
    s.run("admin", "recover_key", new, _pk("doctor-3"))
    s.run("admin", "delete_user", pk["patient"], label="delete_user (patient, 3 records)")
    return s.gas


def measure_throughput(calls: int = 2_000) -> dict[str, float]:
    """set_policy calls per CPU-second on one core, over 50 grantees (first grants, then updates)."""
    s = _Scenario()
    enc = b"\x22" * 32
    s.run("admin", "add_user", s.pk["patient"], "patient", enc, "area-1")
    grantees = [_pk(f"reader-{i}") for i in range(50)]
    for grantee in grantees:
        s.run("admin", "add_user", grantee, "doctor", enc, "")
    admin, patient = s.pk["admin"], s.pk["patient"]
    vm, state = s.vm, s.state
    gas = 0
    started = time.process_time()
    for i in range(calls):
        block = BlockInfo(10_000 + i, 100_000 + i)
        receipt = vm.call(
            state,
            admin,
            EHR_CONTRACT_NAME,
            "set_policy",
            [patient, grantees[i % 50], "*", 0],
            block=block,
            gas_limit=GAS_LIMIT,
        )
        gas += receipt.gas_used
    elapsed = time.process_time() - started
    loop_gas, loop_seconds = _loop_calibration()
    return {
        "set_policy_calls": calls,
        "set_policy_calls_per_cpu_second": round(calls / elapsed, 1),
        "set_policy_us_per_call": round(elapsed / calls * 1e6, 1),
        "set_policy_mean_gas": round(gas / calls, 1),
        "ns_per_gas_set_policy": round(elapsed / gas * 1e9, 1),
        "ns_per_gas_tight_loop": round(loop_seconds / loop_gas * 1e9, 1),
    }


def _loop_calibration() -> tuple[int, float]:
    """A tight `while True` loop run to out-of-gas: pure interpreter time per gas unit."""
    vm, state = VM(), MemoryStorage()
    deployed = vm.deploy(
        state,
        _pk("x"),
        "def spin():\n    i = 0\n    while True:\n        i += 1\n",
        [],
        block=BlockInfo(1, 1),
        gas_limit=GAS_LIMIT,
    )
    assert deployed.address is not None
    started = time.process_time()
    receipt = vm.call(state, _pk("x"), deployed.address, "spin", [], block=BlockInfo(2, 2), gas_limit=2_000_000)
    return receipt.gas_used, time.process_time() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="EHR-contract gas per function and VM call throughput")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--calls", type=int, default=2_000, help="set_policy calls for the throughput run")
    options = parser.parse_args(argv)
    gas, throughput = measure_gas(), measure_throughput(options.calls)
    if options.json:
        print(json.dumps({"gas": gas, "throughput": throughput}, indent=2))
        return 0
    print("gas per EHR-contract call")
    for label, used in gas.items():
        print(f"  {label:<40} {used:>8}")
    print("set_policy on one core")
    for label, number in throughput.items():
        print(f"  {label:<40} {number:>10}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
