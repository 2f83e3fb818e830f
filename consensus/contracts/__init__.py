"""Contracts that ship with ehrnet, as restricted-Python sources for the VM (consensus/vm).

The sources use a `.contract` extension so host tools never import or type-check them as Python; they are
package data, read through importlib.resources.

`ehr.contract` is version 1 of the EHR contract, the one every chain deploys at genesis: it is consensus-critical
and never edited (its hash is pinned by a test). Later versions are new files (`ehr_v2.contract`, ...) that a chain
switches to with a `contract_upgrade` transaction (consensus/contract_upgrade.py), which finds them here by hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache
from importlib import resources

from consensus.vm import VM, BlockInfo, Receipt, Storage

EHR_CONTRACT_NAME = "ehr"
# The newest version of the EHR contract that this release ships (what `ehrnet admin upgrade-ehr` installs).
EHR_LATEST = "ehr_v2"


def source(name: str) -> str:
    """The source of the bundled contract `name` (e.g. "ehr")."""
    resource = resources.files(__name__).joinpath(f"{name}.contract")
    if not resource.is_file():
        raise FileNotFoundError(f"no bundled contract named {name!r}")
    return resource.read_text(encoding="utf-8")


def ehr_source() -> str:
    """Version 1, as deployed at genesis."""
    return source(EHR_CONTRACT_NAME)


def ehr_latest_source() -> str:
    return source(EHR_LATEST)


@cache
def _bundled_by_hash() -> dict[bytes, str]:
    found: dict[bytes, str] = {}
    for resource in resources.files(__name__).iterdir():
        if resource.name.endswith(".contract") and resource.is_file():
            text = resource.read_text(encoding="utf-8")
            found[hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()] = text
    return found


def bundled_source(code_hash: bytes) -> str | None:
    """The bundled contract source whose sha256 is `code_hash`, or None if this release ships none."""
    return _bundled_by_hash().get(code_hash)


def deploy_ehr(
    vm: VM, state: Storage, deployer_pk: bytes, admins: Sequence[bytes], *, block: BlockInfo, gas_limit: int
) -> Receipt:
    """Deploy the EHR contract under its well-known name with `admins` as the genesis admin set (genesis)."""
    return vm.deploy(
        state, deployer_pk, ehr_source(), [list(admins)], block=block, gas_limit=gas_limit, name=EHR_CONTRACT_NAME
    )
