"""A deployed EHR contract with one user of each role, for the contract tests and the gas bench."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from consensus.contracts import EHR_CONTRACT_NAME, ehr_source
from consensus.vm import VM, BlockInfo, MemoryStorage, Receipt
from primitives import codec
from primitives.keys import SigningKey, address_of

ROLES = ("admin", "ehr_manager", "edge", "doctor", "carer", "patient")
GAS = 2_000_000


def key(label: str) -> bytes:
    """A deterministic Ed25519 public key per label (seeded, never random)."""
    seed = label.encode().ljust(32, b".")[:32]
    return SigningKey(seed).public_key


def enc_key(label: str) -> bytes:
    return (label.encode() + b"/x25519").ljust(32, b"_")[:32]


@dataclass
class EhrWorld:
    vm: VM = field(default_factory=VM)
    state: MemoryStorage = field(default_factory=MemoryStorage)
    time: int = 1_000
    height: int = 1
    pks: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def create(cls, extra_admins: tuple[str, ...] = ()) -> EhrWorld:
        world = cls()
        admins = ["admin", *extra_admins]
        for label in admins:
            world.pks[label] = key(label)
        receipt = world.vm.deploy(
            world.state,
            world.pks["admin"],
            ehr_source(),
            [[world.pks[label] for label in admins]],
            block=world.block,
            gas_limit=GAS,
            name=EHR_CONTRACT_NAME,
        )
        assert receipt.ok, receipt.error
        for label, role in [
            ("manager", "ehr_manager"),
            ("edge", "edge"),
            ("doctor", "doctor"),
            ("carer", "carer"),
            ("patient", "patient"),
            ("patient2", "patient"),
        ]:
            world.add(label, role)
        world.pks["stranger"] = key("stranger")
        return world

    @property
    def block(self) -> BlockInfo:
        return BlockInfo(self.height, self.time)

    def uid(self, label: str) -> bytes:
        return address_of(key(label))

    def add(self, label: str, role: str, area: str = "area-7") -> Receipt:
        self.pks[label] = key(label)
        return self.ok("admin", "add_user", self.pks[label], role, enc_key(label), area if role == "patient" else "")

    def call(self, sender: str, func: str, *args: codec.Value) -> Receipt:
        self.height += 1
        return self.vm.call(
            self.state, self.pks[sender], EHR_CONTRACT_NAME, func, list(args), block=self.block, gas_limit=GAS
        )

    def ok(self, sender: str, func: str, *args: codec.Value) -> Receipt:
        receipt = self.call(sender, func, *args)
        assert receipt.ok, f"{func}: {receipt.error}"
        return receipt

    def refused(self, sender: str, func: str, *args: codec.Value) -> str:
        """The revert message of a call that must be refused, after checking it changed nothing."""
        before = dict(self.state.items)
        receipt = self.call(sender, func, *args)
        assert receipt.status == "reverted", receipt
        assert self.state.items == before
        assert receipt.error is not None
        return receipt.error

    def view(self, func: str, *args: codec.Value) -> Any:
        receipt = self.vm.view(self.state, EHR_CONTRACT_NAME, func, list(args), block=self.block)
        assert receipt.ok, f"{func}: {receipt.error}"
        return receipt.return_value
