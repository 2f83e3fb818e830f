"""Version 1's gas schedule, pinned: the exact gas of known receipts, taken from the code before gas was versioned.

Gas is in every contract receipt and so in the receipts root; a node syncing an old chain re-executes it, so a
version's prices can never change once a chain has used them. If one of these numbers moves, version 1 changed:
put the new prices in a new version instead (consensus/vm/versions.py).
"""

from __future__ import annotations

import pytest

from bench.gas import measure_gas
from consensus.vm import VM
from consensus.vm.versions import rules_for
from tests.vm.helpers import run

# Gas per EHR-contract function in bench/gas.py's scripted session.
EHR_V1 = {
    "deploy (with init)": 103805,
    "add_user": 7017,
    "register_ehr": 7659,
    "set_policy": 8954,
    "set_policy (by patient)": 9436,
    "policy_list (view)": 3620,
    "retrieve_ehrs (granted, 3 CIDs)": 8196,
    "retrieve_ehrs (denied + warning)": 10199,
    "revoke_policy": 6386,
    "penalty": 5686,
    "reinstate": 5089,
    "set_max_warnings": 2380,
    "break_glass": 11177,
    "review_break_glass": 12100,
    "audit (view)": 3745,
    "get_user (view)": 1443,
    "rotate_key": 6722,
    "recover_key": 7538,
    "delete_user (patient, 3 records)": 9749,
}

# Small programs exercising every size-charged operation class; (gas, status) under version 1.
SNIPPETS_V1 = {
    "deep_eq": (
        "def main():\n    a = [[0] * 30] * 30\n    b = [[0] * 30] * 30\n    n = 0\n    for i in range(5):\n"
        "        if a == b:\n            n += 1\n    return n\n",
        1394,
        "ok",
    ),
    "deep_in": (
        "def main():\n    a = [[i, i] for i in range(50)]\n    return [49, 49] in a and [7] not in a\n",
        1503,
        "ok",
    ),
    "strings": (
        "def main():\n    s = 'ab' * 500\n    t = s.upper() + s.replace('a', 'c')\n"
        "    return len(t.split('b')) + len(','.join(['x'] * 100)) + t.find('zz')\n",
        1211,
        "ok",
    ),
    "sort_hash": (
        "def main():\n    xs = [(i * 7919) % 1000 for i in range(300)]\n    ys = sorted(xs)\n"
        "    return sha256(str(ys).encode())\n",
        8419,
        "ok",
    ),
    "copy_dict": (
        "def main():\n    d = {str(i): [i] * 10 for i in range(100)}\n    e = dict(d)\n    ks = list(e.keys())\n"
        "    ks.sort()\n    return len(str(d)) + len(ks) + sum([len(v) for v in e.values()])\n",
        8238,
        "ok",
    ),
    "big_deep_eq": (
        "def main():\n    a = [[0] * 300] * 300\n    b = [[0] * 300] * 300\n    return a == b\n",
        12218,
        "ok",
    ),
    "wide_ints": (
        "def main():\n    x = 3 ** 150\n    y = x * x // 7 - (x << 3)\n    return y % 1000003\n",
        585,
        "failed",
    ),
}


def _v1() -> VM:
    rules = rules_for(1)
    return VM(rules.schedule, rules.limits)


def test_ehr_contract_gas_under_version_1_is_unchanged() -> None:
    assert measure_gas(version=1) == EHR_V1


@pytest.mark.parametrize("name", sorted(SNIPPETS_V1))
def test_size_charged_operations_under_version_1_are_unchanged(name: str) -> None:
    source, gas, status = SNIPPETS_V1[name]
    receipt = run(source, vm=_v1())
    assert (receipt.gas_used, receipt.status) == (gas, status)
