"""The client side of EHR sharing, as a device, a doctor or the admin uses it (docs/LIGHT.md).

Ledger and contract operations go to any full node over its HTTP API (signed transactions, views), through the
node client (node/client/: any transport); the sharing protocol and offloading go over libp2p to the EHRs manager
and an edge node, from the client's own libp2p peer (it only dials and sends requests: it never gossips, votes or
stores others' data). A node's refusal reaches callers as `SharingError`, like the contract's; a node that cannot
be reached as the client's `NodeError`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import nacl.bindings

from consensus.tx import Tx
from consensus.vm.jsonvalues import from_json, to_json
from node.client import AsyncNodeClient, NodeRefused, NodeTimeout
from node.ehr import wire
from primitives import codec
from primitives.keys import SigningKey, address_of
from storage.ehr_vault import open_for_reader
from storage.record_encryption import x25519_from_ed25519_seed

if TYPE_CHECKING:
    from node.p2p.bridge import P2PHost  # libp2p is imported by whoever starts a host, not by this library

CALL_GAS = 2_000_000
T = TypeVar("T")


class SharingError(RuntimeError):
    """A node or the contract refused; the message says which and why."""


def enc_public_of(signing_public: bytes) -> bytes:
    """The X25519 key that matches an Ed25519 key (libsodium's conversion), as registered in the contract."""
    return bytes(nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(signing_public))


@dataclass(frozen=True)
class Record:
    cid: str
    plaintext: bytes


async def refusals_as_sharing_errors(answer: Awaitable[T]) -> T:
    """A node's refusal (4xx/5xx, with its message) as `SharingError`, the error users of this module handle."""
    try:
        return await answer
    except NodeRefused as exc:
        raise SharingError(str(exc)) from exc


class EhrUser:
    """One identity (admin, patient, doctor, …) acting through a node."""

    def __init__(self, key: SigningKey, api: AsyncNodeClient, chain_id: str, enc_private: bytes | None = None) -> None:
        """`enc_private` is the X25519 key registered for this user in the contract (a light identity's box.key);
        by default the one converted from the signing key, which `add_user` registers (`enc_public_of`)."""
        self.key = key
        self.api = api
        self.chain_id = chain_id
        if enc_private is None:
            self.enc_private, self.enc_public = x25519_from_ed25519_seed(key.seed)
        else:
            self.enc_private, self.enc_public = enc_private, bytes(nacl.bindings.crypto_scalarmult_base(enc_private))

    @property
    def pk(self) -> bytes:
        return self.key.public_key

    @property
    def uid(self) -> bytes:
        return address_of(self.key.public_key)

    async def signed_call(self, function: str, args: list[codec.Value]) -> Tx:
        nonce = await refusals_as_sharing_errors(self.api.next_nonce(self.key.address.hex()))
        body: dict[str, codec.Value] = {"contract": "ehr", "function": function, "args": args, "gas_limit": CALL_GAS}
        return Tx.create(self.key, self.chain_id, "call", nonce, body)

    async def call(self, function: str, args: list[codec.Value], timeout_s: float = 20.0) -> codec.Value:
        """Submit a contract call and wait until it is final; returns the contract's return value."""
        tx = await self.signed_call(function, args)
        await refusals_as_sharing_errors(self.api.submit(tx.raw))
        receipt = await self.wait_receipt(tx.hash, timeout_s)
        result = receipt.get("result") or {}
        status = result.get("vm_status")
        if status != "ok":
            error = str(receipt.get("error"))
            shown = error if error.startswith(f"{status}:") else f"{status}: {error}"  # say "reverted" once
            raise SharingError(f"ehr.{function}: {shown}")
        return from_json(result.get("return"))

    async def submit(self, kind: str, body: dict[str, codec.Value], timeout_s: float = 20.0) -> dict[str, Any]:
        """Sign a transaction of any kind with the next nonce, submit it and wait until final: its receipt,
        or SharingError with the chain's reason if it failed."""
        nonce = await refusals_as_sharing_errors(self.api.next_nonce(self.key.address.hex()))
        tx = Tx.create(self.key, self.chain_id, kind, nonce, body)
        await refusals_as_sharing_errors(self.api.submit(tx.raw))
        receipt = await self.wait_receipt(tx.hash, timeout_s)
        if receipt.get("status") != "ok":
            raise SharingError(f"{kind}: {receipt.get('error')}")
        return receipt

    async def allowlist(self, pk: bytes, *, add: bool = True) -> bool:
        """Admin: put an account on (or take it off) the chain's account allowlist (docs/LEDGER.md, "Account
        permissioning"); False while the change waits for more admins' approvals (admin_threshold > 1)."""
        receipt = await self.submit("allowlist_add" if add else "allowlist_remove", {"key": pk})
        return any(e.get("name") in ("account_allowlisted", "account_disallowed") for e in receipt.get("events", []))

    async def accounts_mode(self) -> str:
        """The chain's `accounts` setting, as its node reports it ("open" on nodes that predate it)."""
        status = await refusals_as_sharing_errors(self.api.status())
        return str(status.get("accounts", "open"))

    async def upgrade_ehr(self) -> bool:
        """Admin: move the `ehr` contract in place to the newest version this release ships (docs/VM.md,
        "Upgrading a contract"); False if it already runs it. The body names the code by hash only: every node's
        release ships it, and it is larger than a transaction may be."""
        from consensus.contract_upgrade import upgrade_body
        from consensus.contracts import EHR_CONTRACT_NAME, ehr_latest_source

        body = upgrade_body(EHR_CONTRACT_NAME, ehr_latest_source())
        abi = await refusals_as_sharing_errors(self.api.abi(EHR_CONTRACT_NAME))
        code_hash = body["code_hash"]
        assert isinstance(code_hash, bytes)
        if abi.get("code_hash") == code_hash.hex():
            return False
        receipt = await self.submit("contract_upgrade", body)
        events = [e.get("name") for e in receipt.get("events", [])]
        if "contract_upgraded" not in events:  # an approval, waiting for more admins (admin_threshold > 1)
            raise SharingError("contract_upgrade: approval recorded; more admins must send the same upgrade")
        return True

    async def wait_receipt(self, tx_hash: bytes, timeout_s: float) -> dict[str, Any]:
        """The receipt once the transaction is final on this user's node (the client's `wait_final`)."""
        try:
            await self.api.wait_final(tx_hash.hex(), timeout_s)
        except NodeTimeout as exc:
            raise SharingError(f"transaction {tx_hash.hex()} not final after {timeout_s:.0f} s") from exc
        return await refusals_as_sharing_errors(self.api.receipt(tx_hash.hex()))

    async def view(self, function: str, args: list[codec.Value]) -> codec.Value:
        doc = await refusals_as_sharing_errors(self.api.view("ehr", function, to_json(args), self.pk.hex()))
        if doc.get("status") != "ok":
            raise SharingError(f"ehr.{function}: {doc.get('status')}: {doc.get('error')}")
        return from_json(doc.get("return"))

    # ---- the paper's contract functions, by role ---------------------------------------------------------

    async def add_user(self, pk: bytes, role: str, area_id: str = "", enc_pk: bytes | None = None) -> codec.Value:
        return await self.call("add_user", [pk, role, enc_public_of(pk) if enc_pk is None else enc_pk, area_id])

    async def delete_user(self, pk: bytes) -> codec.Value:
        return await self.call("delete_user", [pk])

    async def grant(self, grantee: bytes, scope: str = "*", expires_at: int = 0) -> codec.Value:
        return await self.call("set_policy", [self.pk, grantee, scope, expires_at])

    async def revoke(self, grantee: bytes) -> codec.Value:
        return await self.call("revoke_policy", [self.pk, grantee])

    async def break_glass(self, patient_pk: bytes, scope: str, seconds: int, reason: str) -> dict[str, Any]:
        """Doctor: emergency access to the patient's records in `scope` for `seconds` (ehr version 2); returns
        {"granted", "id", "cids", "expires_at"}. Reads go through the manager as usual while the window is open."""
        answer = await self.call("break_glass_scoped", [patient_pk, scope, seconds, reason])
        assert isinstance(answer, dict)
        return answer

    async def records(self, patient_uid: bytes | None = None) -> list[str]:
        """CIDs registered for a patient, oldest first (from the contract's `ehr_registered` events)."""
        uid = (patient_uid or self.uid).hex()
        query = {"contract": "ehr", "name": "ehr_registered", "patient": uid}
        events = await refusals_as_sharing_errors(self.api.events(query))
        return [str(from_json(e["data"]).get("cid")) for e in events]  # type: ignore[union-attr]

    # ---- the 4-step read ------------------------------------------------------------------------------------

    async def request_records(self, host: P2PHost, manager_peer: str, patient_pk: bytes) -> tuple[list[Record], int]:
        """Ask the EHRs manager for a patient's records (paper Sec. III-B, steps 1–4); decrypt them locally."""
        tx = await self.signed_call("retrieve_ehrs", [patient_pk])
        request = wire.sign_request(self.key, "retrieve", {"tx": tx.raw, "issued_ms": int(time.time() * 1000)})
        return await self.send_retrieve(host, manager_peer, request)

    async def request_records_http(self, manager: AsyncNodeClient, patient_pk: bytes) -> tuple[list[Record], int]:
        """The same 4-step read through the manager node's HTTP API (no libp2p on the device)."""
        tx = await self.signed_call("retrieve_ehrs", [patient_pk])
        request = wire.sign_request(self.key, "retrieve", {"tx": tx.raw, "issued_ms": int(time.time() * 1000)})
        answer = await refusals_as_sharing_errors(manager.ehr_request(request.hex()))
        return self.open_answer(bytes.fromhex(answer["answer"]))

    async def send_retrieve(self, host: P2PHost, manager_peer: str, request: bytes) -> tuple[list[Record], int]:
        raw = await host.request(
            manager_peer, wire.EHR_PROTOCOL, request, timeout_s=60, max_response_bytes=wire.MAX_RESPONSE_BYTES
        )
        return self.open_answer(raw)

    def open_answer(self, raw: bytes) -> tuple[list[Record], int]:
        """Decrypt the records of a manager's answer locally (step 4 ends on the requester's device)."""
        try:
            answer = wire.decode_answer(raw)
        except wire.RequestRefused as exc:
            raise SharingError(str(exc)) from exc
        records = []
        entries = answer.get("records")
        assert isinstance(entries, list)
        for entry in entries:
            assert isinstance(entry, dict)
            wrapped, ciphertext = entry["wrapped_key"], entry["ciphertext"]
            assert isinstance(wrapped, bytes) and isinstance(ciphertext, bytes)
            records.append(Record(str(entry["cid"]), open_for_reader(wrapped, self.enc_private, ciphertext)))
        height = answer.get("height")
        return records, height if isinstance(height, int) else 0

    async def store_local_result(
        self, host: P2PHost, manager_peer: str, manager_pk: bytes, record: bytes, timeout_s: float = 20.0
    ) -> str:
        """A result computed on the device: sealed for the manager, who files it as this patient's EHR.

        Returns once the registration is final on this user's own node too, so the record is in `records()`
        right away (the manager answers when its node has the block; another node may be a moment behind)."""
        sealed = nacl.bindings.crypto_box_seal(record, enc_public_of(manager_pk))
        request = wire.sign_request(self.key, "store", {"patient": self.pk, "sealed": sealed})
        raw = await host.request(manager_peer, wire.EHR_PROTOCOL, request, timeout_s=60)
        try:
            answer = wire.decode_answer(raw)
        except wire.RequestRefused as exc:
            raise SharingError(str(exc)) from exc
        tx_hash = answer.get("tx_hash")
        if isinstance(tx_hash, bytes):
            await self.wait_receipt(tx_hash, timeout_s)
        return str(answer.get("cid"))
