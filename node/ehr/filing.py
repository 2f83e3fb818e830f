"""Filing an EHR (paper Sec. III-B, storage side): encrypt, store, wrap the key, register the CID on the ledger.

Used by the EHRs manager for results a device computed itself, and by edge nodes for results of offloaded tasks.
The record is encrypted under a fresh data key before it reaches the content store, so storage nodes hold only
ciphertext; the data key is wrapped (SealedBox) for the patient and for the manager and filed in the manager's
key store, never in the content store or on the ledger; the ledger gets the CID and a salted hash only. The
sealing and wrapping are `storage.ehr_vault.seal_and_store`, the code the privacy tests cover; this module adds
the ledger and, through `file_keys`, the way the keys reach the manager.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from node.ehr.contract import ContractCallError, call_return, call_tx, ehr_view, final_receipt
from node.ledger.protocol import Ledger
from primitives.keys import SigningKey, address_of
from storage.address import CID
from storage.ehr_vault import seal_and_store
from storage.objects import ObjectStore
from storage.placement import DEFAULT_REPLICATION

log = logging.getLogger(__name__)

META_DOMAIN = b"ehrnet/ehr-meta/v1"

# file_keys(record, owner uid, {reader uid: wrapped key})
FileKeys = Callable[[CID, bytes, dict[bytes, bytes]], Awaitable[None]]


class FilingError(RuntimeError):
    """A record could not be filed; the message says at which step."""


@dataclass(frozen=True)
class Filed:
    cid: CID
    patient_uid: bytes
    index: int
    tx_hash: bytes


def enc_key_of(ledger: Ledger, pk: bytes) -> tuple[bytes, bytes]:
    """(uid, X25519 public key) of a registered user, from the contract's last final state."""
    try:
        user = ehr_view(ledger.store, "get_user", [pk])
    except ContractCallError as exc:
        raise FilingError(f"cannot read user {pk.hex()[:16]}: {exc}") from exc
    if (
        not isinstance(user, dict)
        or not isinstance(user.get("enc_pk"), bytes)
        or not isinstance(user.get("uid"), bytes)
    ):
        raise FilingError(f"{pk.hex()[:16]} is not a registered user with an encryption key")
    uid, enc = user["uid"], user["enc_pk"]
    assert isinstance(uid, bytes) and isinstance(enc, bytes)
    return uid, enc


class RecordFiler:
    def __init__(
        self,
        key: SigningKey,
        ledger: Ledger,
        objects: ObjectStore,
        file_keys: FileKeys,
        manager_pk: Callable[[], bytes],
        announce: Callable[[CID, int], Awaitable[object]] | None = None,
    ) -> None:
        self.key = key
        self.ledger = ledger
        self.objects = objects
        self.file_keys = file_keys
        self.manager_pk = manager_pk
        # Tell the DHT this node provides the record and place its copies; returns once they are held, so a
        # filed record (r >= 2) survives the crash of any one holder from the moment its CID reaches the ledger.
        self.announce = announce

    async def file(self, patient_pk: bytes, plaintext: bytes, replication: int = DEFAULT_REPLICATION) -> Filed:
        patient_uid, patient_enc = enc_key_of(self.ledger, patient_pk)
        manager_uid, manager_enc = enc_key_of(self.ledger, self.manager_pk())
        readers = {patient_uid: patient_enc, manager_uid: manager_enc}
        sealed = await seal_and_store(self.objects, _one(plaintext), readers, replication)
        cid = sealed.cid
        if self.announce is not None:
            await self.announce(cid, replication)
        await self.file_keys(cid, patient_uid, sealed.wrapped)
        # A salted hash: it proves the content later without revealing anything guessable about it.
        meta_hash = hashlib.sha256(META_DOMAIN + sealed.data_key + plaintext).digest()
        nonce = self.ledger.next_nonce(self.key.address)
        tx = call_tx(self.key, self.ledger.chain_id, nonce, "register_ehr", [patient_pk, str(cid), meta_hash])
        self.ledger.submit_tx(tx.raw)
        receipt = await final_receipt(self.ledger, tx.hash)
        try:
            index = call_return(receipt)
        except ContractCallError as exc:
            raise FilingError(f"register_ehr for {cid}: {exc}") from exc
        log.info("filed EHR %s for patient %s", cid, address_of(patient_pk).hex()[:16])
        return Filed(cid, patient_uid, int(index) if isinstance(index, int) else -1, tx.hash)


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data
