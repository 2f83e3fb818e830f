"""Contracts that ship with ehrnet, as restricted-Python sources for the VM (consensus/vm).

The sources use a `.contract` extension so host tools never import or type-check them as Python; they are
package data, read through importlib.resources.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

from consensus.vm import VM, BlockInfo, Receipt, Storage

EHR_CONTRACT_NAME = "ehr"


def source(name: str) -> str:
    """The source of the bundled contract `name` (e.g. "ehr")."""
    resource = resources.files(__name__).joinpath(f"{name}.contract")
    if not resource.is_file():
        raise FileNotFoundError(f"no bundled contract named {name!r}")
    return resource.read_text(encoding="utf-8")


def ehr_source() -> str:
    return source(EHR_CONTRACT_NAME)


def deploy_ehr(
    vm: VM, state: Storage, deployer_pk: bytes, admins: Sequence[bytes], *, block: BlockInfo, gas_limit: int
) -> Receipt:
    """Deploy the EHR contract under its well-known name with `admins` as the genesis admin set (genesis)."""
    return vm.deploy(
        state, deployer_pk, ehr_source(), [list(admins)], block=block, gas_limit=gas_limit, name=EHR_CONTRACT_NAME
    )
