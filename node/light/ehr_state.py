"""The `ehr` contract's storage, read by a light client through state proofs.

The contract documents its storage layout (consensus/contracts/ehr.contract, module docstring) and the ledger
keeps each contract key under `b"vm/c/" + address + b"/s/" + key` in the state tree whose root every header
commits to (docs/VM.md, "Storage and key layout"). So every answer here — who a key belongs to, a patient's
record list, a policy, the audit trail — is checked against a verified header by `Follower.get_state`, never
taken on a node's word. The contract's address itself comes from its proven name entry `b"vm/n/ehr"`.

The keys are spelled out here rather than imported from the ledger (consensus.contract_txs pulls in the
executor and the VM), so a device process stays small; tests/light check them against the ledger's functions.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.light.errors import BadPeerError, LightError
from node.light.follower import Follower
from primitives import codec

VM_PREFIX = b"vm/"
EHR_CONTRACT = "ehr"
ADDRESS_BYTES = 20


def name_state_key(name: str) -> bytes:
    return VM_PREFIX + b"n/" + name.encode("utf-8")


def contract_state_key(address: bytes, key: bytes) -> bytes:
    return VM_PREFIX + b"c/" + address + b"/s/" + key


class NotRegisteredError(LightError):
    """A key the command relies on is not a registered user of the contract (proof-verified absence)."""


@dataclass(frozen=True)
class Verified:
    """A decoded contract value (None: proven absent) and the verified height it was proven at."""

    value: codec.Value
    height: int


class EhrState:
    """Proof-verified reads of the `ehr` contract's storage through a light client's follower."""

    def __init__(self, follower: Follower) -> None:
        self.follower = follower
        self._address: bytes | None = None

    async def address(self) -> bytes:
        if self._address is None:
            got = await self.follower.get_state(name_state_key(EHR_CONTRACT))
            if got.value is None or len(got.value) != ADDRESS_BYTES:
                raise LightError(f"the chain has no contract named {EHR_CONTRACT!r} (proof-verified)")
            self._address = got.value
        return self._address

    async def read(self, key: bytes) -> Verified:
        got = await self.follower.get_state(contract_state_key(await self.address(), key))
        if got.value is None:
            return Verified(None, got.height)
        try:
            return Verified(codec.decode(got.value), got.height)
        except codec.CodecError as exc:
            # The proof verified, so these bytes are what the chain holds: a contract bug, not a lying node.
            raise LightError(f"contract key {key!r} holds bytes that are not DAG-CBOR: {exc}") from exc

    async def uid_of(self, pk: bytes) -> bytes:
        """The user id registered for signing key `pk` (b"k/" + pk)."""
        got = await self.read(b"k/" + pk)
        if not isinstance(got.value, bytes):
            raise NotRegisteredError(f"{pk.hex()} is not a registered key in the ehr contract")
        return got.value

    async def user(self, uid: bytes) -> dict[str, codec.Value] | None:
        got = await self.read(b"u/" + uid)
        return got.value if isinstance(got.value, dict) else None

    async def records(self, patient_uid: bytes) -> list[dict[str, codec.Value]]:
        """The patient's registered records, oldest first: {"cid", "meta_hash", "by", "time"} each."""
        count = await self._count(b"r/" + patient_uid)
        out = []
        for n in range(count):
            entry = (await self.read(b"r/" + patient_uid + b"/" + str(n).encode())).value
            if isinstance(entry, dict):
                out.append(entry)
        return out

    async def record_owner(self, cid: str) -> bytes | None:
        """The uid of the patient a CID is registered to ("cid/" + cid), or None."""
        got = await self.read(b"cid/" + cid.encode("utf-8"))
        return got.value if isinstance(got.value, bytes) else None

    async def policy(self, patient_uid: bytes, grantee_uid: bytes) -> Verified:
        """The grant {"scope", "expires_at", "granted_by", "granted_at"} (value None when there is none)."""
        return await self.read(b"p/" + patient_uid + grantee_uid)

    async def audit(self, patient_uid: bytes, last: int) -> tuple[int, list[dict[str, codec.Value]]]:
        """(total, the newest `last` audit entries oldest first)."""
        total = await self._count(b"a/" + patient_uid)
        entries = []
        for n in range(max(0, total - last), total):
            entry = (await self.read(b"a/" + patient_uid + b"/" + str(n).encode())).value
            if isinstance(entry, dict):
                entries.append(entry)
        return total, entries

    async def _count(self, key: bytes) -> int:
        value = (await self.read(key)).value
        if value is None:
            return 0
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise BadPeerError(f"contract key {key!r} should hold a count, holds {value!r}")
        return value
